//! The restock_diff processor's extractor: availability and price from a
//! product page's machine-readable data (upstream 0.60.10
//! `processors/restock_diff`).
//!
//! Upstream reads the page in two passes and so do we:
//!
//! 1. a quick pass (upstream's "pure python" extractor): each JSON-LD block
//!    in document order gives the first `price`/`Price`, `availability` and
//!    `priceCurrency`/`currency` found anywhere inside it (arrays, `@graph`,
//!    nested `offers` all included); the first block with a price ends the
//!    search. What is still missing comes from `og:price:amount`,
//!    `og:price:currency`, `og:availability` and then from simple microdata
//!    (`itemprop="price|priceCurrency|availability"`, the last one on the
//!    page wins). When this pass has both a price and an availability it is
//!    the answer.
//! 2. otherwise the full pass (upstream's extruct fallback): every price in
//!    every JSON-LD block and every microdata `price` is collected and
//!    de-duplicated by value; more than one distinct price is
//!    [`RestockError::MoreThanOnePrice`] (upstream: "more than one price
//!    detected, this plugin is only for product pages with ONE product").
//!    Currency and availability are the first found; OpenGraph/meta
//!    `…price:amount`, `…price:currency`, `product:availability` fill what
//!    is left (and `og:availability`, which the quick pass reads).
//!
//! The availability is normalised (schema.org prefix dropped, lower case, no
//! white space) and is "in stock" when it contains one of upstream's
//! in-stock words ([`IN_STOCK_WORDS`]). Work is bounded: at most
//! [`MAX_JSONLD_BLOCKS`] blocks and [`MAX_VALUES`] JSON values are visited;
//! the page itself has already been through the fetch budget.

use scraper::{ElementRef, Html, Selector};
use serde_json::Value;

use crate::model::{Restock, RestockConfig};

/// JSON-LD blocks read from one page.
pub const MAX_JSONLD_BLOCKS: usize = 64;
/// JSON values visited while searching one page's JSON-LD.
pub const MAX_VALUES: usize = 100_000;

/// Substrings of a normalised availability meaning "in stock" (upstream's list).
pub const IN_STOCK_WORDS: [&str; 5] = [
    "instock",
    "instoreonly",
    "limitedavailability",
    "onlineonly",
    "presale",
];

/// What the extractor found. `in_stock` is `None` when no availability was
/// found at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    pub price: Option<f64>,
    pub currency: Option<String>,
    /// Normalised availability, e.g. `instock`, `outofstock`.
    pub availability: Option<String>,
    pub in_stock: Option<bool>,
}

impl Extracted {
    /// Upstream's test "something valid was found": a price or an availability.
    pub fn found_anything(&self) -> bool {
        self.price.is_some_and(|p| p != 0.0) || self.availability.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestockError {
    #[error(
        "Cannot run, more than one price detected, this plugin is only for product pages with ONE product, try the content-change detection mode."
    )]
    MoreThanOnePrice(Vec<f64>),
}

/// Find price and availability in an HTML page.
pub fn extract(html: &str) -> Result<Extracted, RestockError> {
    let doc = Html::parse_document(html);
    let meta = PageData::read(&doc);

    let quick = meta.quick_pass();
    if quick.price.is_some() && quick.availability.is_some() {
        return Ok(finish(quick));
    }
    meta.full_pass().map(finish)
}

/// One restock check's result: the watch's new `restock` state, the snapshot text and
/// whether upstream's rules call it a change.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub restock: Restock,
    pub text: String,
    pub changed: bool,
}

/// The config upstream uses when an overriding tag has none: `{}`, every rule off.
pub fn empty_config() -> RestockConfig {
    RestockConfig {
        in_stock_processing: String::new(),
        follow_price_changes: false,
        ..RestockConfig::default()
    }
}

/// The restock_diff processor over a fetched HTML page (upstream's
/// `perform_site_check.run_changedetection`): extract, keep `last_price` (the price
/// before the last real price move), build the snapshot text and decide the change by
/// `in_stock_processing`, `follow_price_changes`, `price_change_min` / `_max` and
/// `price_change_threshold_percent`. `old` is the watch's stored state (upstream's
/// defaults when it has none). `Err` is the watch's `last_error`.
///
/// `scan` is the browser's out-of-stock scan ([`stock_scan`]; upstream's `instock_data`),
/// `None` from the plain fetcher. A browser check always has one, so it never fails for want
/// of data; the scan decides the stock when the data names no availability, and a phrase it
/// found overrides data that claims the product is in stock (shops' data often lies).
pub fn check(
    html: &str,
    status: u16,
    cfg: &RestockConfig,
    old: Option<&Restock>,
    scan: Option<&str>,
) -> Result<Verdict, String> {
    let found = extract(html).map_err(|e| e.to_string())?;
    if scan.is_none() && !found.found_anything() {
        let what = if cfg.in_stock_processing == "off" {
            "price data for this page unfortunately. (Got code {status} from server), no embedded price information"
        } else {
            "restock data for this page unfortunately. (Got code {status} from server), no embedded stock information"
        };
        return Err(format!(
            "Unable to extract {} was found and nothing interesting in the text, try using this watch with Chrome.",
            what.replace("{status}", &status.to_string())
        ));
    }
    let default = Restock::default();
    let old = old.unwrap_or(&default);
    let mut new = Restock {
        in_stock: found.in_stock,
        price: found.price,
        currency: found.currency,
        last_price: None,
    };
    new.last_price = match new.price {
        Some(p) if Some(p) != old.price => old.price,
        _ => old.last_price,
    };
    if let Some(scan) = scan {
        if found.availability.is_none() {
            new.in_stock = Some(scan == POSSIBLY_IN_STOCK);
        }
        if scan != POSSIBLY_IN_STOCK && new.in_stock == Some(true) {
            tracing::warn!(
                phrase = scan,
                "the page's data says in stock, its text says not: taken as out of stock"
            );
            new.in_stock = Some(false);
        }
    }
    let text = snapshot_text(new.in_stock, new.price);
    Ok(Verdict {
        changed: decide(cfg, old, &new),
        restock: new,
        text,
    })
}

/// Upstream's change rules; `old` is the state before this check.
pub fn decide(cfg: &RestockConfig, old: &Restock, new: &Restock) -> bool {
    let truthy = |v: Option<f64>| v.filter(|p| *p != 0.0);
    let mut changed = false;
    if old.in_stock != new.in_stock {
        match cfg.in_stock_processing.as_str() {
            "in_stock_only" if new.in_stock == Some(true) => changed = true,
            "all_changes" => changed = true,
            _ => {}
        }
    }
    let Some(price) = truthy(new.price).filter(|_| cfg.follow_price_changes) else {
        return changed;
    };
    let previous = truthy(old.price);
    if previous.is_some_and(|prev| prev != price) {
        changed = true;
    }
    let min = truthy(cfg.price_change_min);
    let max = truthy(cfg.price_change_max);
    if (min.is_some() || max.is_some())
        && min.is_none_or(|lo| lo <= price)
        && max.is_none_or(|hi| price <= hi)
    {
        // Inside the limits: nothing to report, whatever moved.
        changed = false;
    }
    if let (Some(prev), true, Some(pc)) = (
        previous,
        changed,
        truthy(cfg.price_change_threshold_percent),
    ) {
        let change = ((price - prev) / prev * 100.0).abs();
        if change != 0.0 && change <= pc {
            changed = false;
        }
    }
    changed
}

/// Upstream's snapshot text for a restock watch:
/// `In Stock: True - Price: 10.0` (`None` when no availability was found,
/// an empty price when none was found or it is zero).
pub fn snapshot_text(in_stock: Option<bool>, price: Option<f64>) -> String {
    let stock = match in_stock {
        Some(true) => "True",
        Some(false) => "False",
        None => "None",
    };
    let price = match price {
        Some(p) if p != 0.0 => py_float(p),
        _ => String::new(),
    };
    format!("In Stock: {stock} - Price: {price}")
        .trim()
        .to_owned()
}

/// The price in a restock snapshot text (`… - Price: 10.0`), as upstream's
/// `get_price_from_history_str` gives it: the number's text, `None` without one.
pub fn price_in_snapshot(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("price:")?;
    let rest = text[at + "price:".len()..].trim_start();
    let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if int_len == 0 {
        return None;
    }
    let after = &rest[int_len..];
    let frac_len = after
        .strip_prefix('.')
        .map_or(0, |f| f.bytes().take_while(u8::is_ascii_digit).count());
    let len = if frac_len > 0 {
        int_len + 1 + frac_len
    } else {
        int_len
    };
    Some(rest[..len].to_owned())
}

/// A float the way Python's `str(float)` prints it for ordinary prices:
/// `10.0`, `1400.5`, `0.99`.
pub fn py_float(p: f64) -> String {
    if p.is_finite() && p.fract() == 0.0 && p.abs() < 1e16 {
        format!("{p:.1}")
    } else {
        format!("{p}")
    }
}

/// Upstream's `Restock.parse_currency`: price text to a number, knowing
/// decimal commas (`39,99`), thousands separators (`1,299`, `1.400,00`) and
/// currency symbols. `None` when nothing numeric is left.
pub fn parse_currency(raw: &str) -> Option<f64> {
    let raw = raw.trim();
    let standardized = if raw.contains(',') && raw.contains('.') {
        let last_dot = raw.rfind('.').unwrap_or(0);
        let last_comma = raw.rfind(',').unwrap_or(0);
        if last_dot > last_comma {
            raw.replace(',', "")
        } else {
            raw.replace('.', "").replace(',', ".")
        }
    } else if only_thousands_commas(raw) {
        raw.replace(',', "")
    } else {
        raw.replace(',', ".")
    };
    let kept: String = standardized
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    if kept.is_empty() {
        return None;
    }
    kept.parse::<f64>().ok().filter(|p| p.is_finite())
}

/// `\D*\d{1,3}(,\d{3})+\D*` over the whole string.
fn only_thousands_commas(s: &str) -> bool {
    let core = s.trim_matches(|c: char| !c.is_ascii_digit());
    let mut groups = core.split(',');
    let Some(first) = groups.next() else {
        return false;
    };
    let digits = |g: &str| g.chars().all(|c| c.is_ascii_digit());
    let mut rest = 0;
    for g in groups {
        if g.len() != 3 || !digits(g) {
            return false;
        }
        rest += 1;
    }
    rest > 0 && (1..=3).contains(&first.len()) && digits(first)
}

/// Drop a schema.org prefix, lower-case, remove white space and quotes.
pub fn normalise_availability(raw: &str) -> String {
    let lower = raw
        .trim_matches(|c| c == ' ' || c == '"' || c == '\'')
        .to_lowercase();
    let rest = ["https://schema.org/", "http://schema.org/"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .unwrap_or(&lower);
    rest.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Whether a normalised availability means "in stock".
pub fn availability_in_stock(normalised: &str) -> bool {
    IN_STOCK_WORDS.iter().any(|w| normalised.contains(w))
}

fn finish(mut found: Extracted) -> Extracted {
    found.availability = found
        .availability
        .take()
        .map(|a| normalise_availability(&a))
        .filter(|a| !a.is_empty());
    found.in_stock = found.availability.as_deref().map(availability_in_stock);
    found
}

/// The machine-readable parts of one page.
#[derive(Default)]
struct PageData {
    jsonld: Vec<Value>,
    /// `<meta property|name=… content=…>`, document order.
    meta: Vec<(String, String)>,
    /// `itemprop` name and value, document order.
    microdata: Vec<(String, String)>,
}

impl PageData {
    fn read(doc: &Html) -> Self {
        let mut out = PageData::default();
        if let Ok(sel) = Selector::parse("script") {
            for script in doc.select(&sel) {
                let is_ld = script
                    .value()
                    .attr("type")
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/ld+json"));
                if !is_ld || out.jsonld.len() >= MAX_JSONLD_BLOCKS {
                    continue;
                }
                let text: String = script.text().collect();
                match serde_json::from_str::<Value>(text.trim()) {
                    Ok(Value::Array(items)) => out.jsonld.extend(items),
                    Ok(v) => out.jsonld.push(v),
                    Err(e) => tracing::debug!("restock: unparsable JSON-LD block: {e}"),
                }
            }
        }
        if let Ok(sel) = Selector::parse("meta") {
            for m in doc.select(&sel) {
                let el = m.value();
                let key = el.attr("property").or_else(|| el.attr("name"));
                if let (Some(k), Some(c)) = (key, el.attr("content"))
                    && !c.is_empty()
                {
                    out.meta.push((k.trim().to_owned(), c.to_owned()));
                }
            }
        }
        if let Ok(sel) = Selector::parse("[itemprop]") {
            for e in doc.select(&sel) {
                let Some(prop) = e.value().attr("itemprop") else {
                    continue;
                };
                let prop = prop.trim();
                if !matches!(prop, "price" | "priceCurrency" | "availability") {
                    continue;
                }
                if let Some(v) = microdata_value(&e, prop) {
                    out.microdata.push((prop.to_owned(), v));
                }
            }
        }
        out
    }

    fn quick_pass(&self) -> Extracted {
        let mut price = None;
        let mut currency = None;
        let mut availability = None;
        let mut budget = MAX_VALUES;
        for block in &self.jsonld {
            let mut found = Found::default();
            collect(block, &mut found, &mut budget);
            if price.is_none() {
                price = found.prices.first().and_then(|v| value_price(v));
            }
            if availability.is_none() {
                availability = found.availabilities.first().map(|v| value_text(v));
            }
            if currency.is_none() {
                currency = found.currencies.first().map(|v| value_text(v));
            }
            if price.is_some() {
                break;
            }
        }
        if price.is_none() {
            price = self.meta_exact("og:price:amount").and_then(parse_currency);
        }
        if currency.is_none() {
            currency = self.meta_exact("og:price:currency").map(str::to_owned);
        }
        if availability.is_none() {
            availability = self.meta_exact("og:availability").map(str::to_owned);
        }
        if price.is_none() {
            price = self.micro_last("price").and_then(parse_currency);
        }
        if currency.is_none() {
            currency = self.micro_last("priceCurrency").map(str::to_owned);
        }
        if availability.is_none() {
            availability = self.micro_last("availability").map(str::to_owned);
        }
        Extracted {
            price: price.filter(|p| *p != 0.0),
            currency,
            availability,
            in_stock: None,
        }
    }

    fn full_pass(&self) -> Result<Extracted, RestockError> {
        let mut found = Found::default();
        let mut budget = MAX_VALUES;
        for block in &self.jsonld {
            collect(block, &mut found, &mut budget);
        }
        let mut prices: Vec<f64> = Vec::new();
        let mut add = |p: Option<f64>| {
            if let Some(p) = p
                && !prices.contains(&p)
            {
                prices.push(p);
            }
        };
        for v in &found.prices {
            match v {
                Value::Array(items) => items.iter().for_each(|i| add(value_price(i))),
                other => add(value_price(other)),
            }
        }
        for (prop, v) in &self.microdata {
            if prop == "price" {
                add(parse_currency(v));
            }
        }
        if prices.len() > 1 {
            tracing::warn!("restock: more than one price found {prices:?}");
            return Err(RestockError::MoreThanOnePrice(prices));
        }
        let mut out = Extracted {
            price: prices.first().copied().filter(|p| *p != 0.0),
            currency: found.currencies.first().map(|v| value_text(v)),
            availability: found.availabilities.first().map(|v| value_text(v)),
            in_stock: None,
        };
        if out.currency.is_none() {
            out.currency = self.micro_first("priceCurrency").map(str::to_owned);
        }
        if out.availability.is_none() {
            out.availability = self.micro_first("availability").map(str::to_owned);
        }
        if out.price.is_none() {
            out.price = self
                .meta_containing("price:amount")
                .and_then(parse_currency)
                .filter(|p| *p != 0.0);
        }
        if out.availability.is_none() {
            // Upstream's extruct pass only knows `product:availability`;
            // its quick pass read `og:availability`, so keep that too.
            out.availability = self
                .meta_containing("product:availability")
                .or_else(|| self.meta_exact("og:availability"))
                .map(str::to_owned);
        }
        if out.currency.is_none() {
            out.currency = self.meta_containing("price:currency").map(str::to_owned);
        }
        Ok(out)
    }

    fn meta_exact(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn meta_containing(&self, part: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k.contains(part))
            .map(|(_, v)| v.as_str())
    }

    fn micro_last(&self, prop: &str) -> Option<&str> {
        self.microdata
            .iter()
            .rev()
            .find(|(p, _)| p == prop)
            .map(|(_, v)| v.as_str())
    }

    fn micro_first(&self, prop: &str) -> Option<&str> {
        self.microdata
            .iter()
            .find(|(p, _)| p == prop)
            .map(|(_, v)| v.as_str())
    }
}

/// A microdata property's value: `content`, then `href` for availability,
/// then the element's own text.
fn microdata_value(e: &ElementRef<'_>, prop: &str) -> Option<String> {
    let el = e.value();
    let attr = if prop == "availability" {
        el.attr("href").or_else(|| el.attr("content"))
    } else {
        el.attr("content")
    };
    let v = match attr {
        Some(a) => a.trim().to_owned(),
        None => e.text().collect::<String>().trim().to_owned(),
    };
    (!v.is_empty()).then_some(v)
}

/// JSON values under the keys upstream searches for, in the order its
/// `$..key` search meets them (a node's own keys, then its children).
#[derive(Default)]
struct Found<'v> {
    prices: Vec<&'v Value>,
    currencies: Vec<&'v Value>,
    availabilities: Vec<&'v Value>,
}

fn collect<'v>(v: &'v Value, found: &mut Found<'v>, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match k.as_str() {
                    "price" | "Price" => found.prices.push(child),
                    "priceCurrency" | "pricecurrency" | "currency" => found.currencies.push(child),
                    "availability" | "Availability" => found.availabilities.push(child),
                    _ => {}
                }
            }
            for child in map.values() {
                collect(child, found, budget);
            }
        }
        Value::Array(items) => {
            for child in items {
                collect(child, found, budget);
            }
        }
        _ => {}
    }
}

fn value_price(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_currency(s),
        Value::Array(items) => items.first().and_then(value_price),
        _ => None,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.first().map(value_text).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// Upstream's out-of-stock phrases, searched (lower case) in the rendered
/// page by its browser-side scraper (`stock-not-in-stock.js`).
pub const OUT_OF_STOCK_TEXTS: &[&str] = &[
    " أخبرني عندما يتوفر",
    "0 in stock",
    "actuellement indisponible",
    "agotado",
    "article épuisé",
    "artikel zurzeit vergriffen",
    "as soon as stock is available",
    "aucune offre n'est disponible",
    "ausverkauft",
    "available for back order",
    "awaiting stock",
    "back in stock soon",
    "back-order or out of stock",
    "backordered",
    "backorder",
    "benachrichtigt mich",
    "binnenkort leverbaar",
    "brak na stanie",
    "brak w magazynie",
    "coming soon",
    "currently have any tickets for this",
    "currently unavailable",
    "dieser artikel ist bald wieder verfügbar",
    "dostępne wkrótce",
    "en rupture",
    "esgotado",
    "in kürze lieferbar",
    "indisponible",
    "indisponível",
    "isn't in stock right now",
    "isnt in stock right now",
    "isn’t in stock right now",
    "item is no longer available",
    "let me know when it's available",
    "mail me when available",
    "message if back in stock",
    "mevcut değil",
    "more on order",
    "nachricht bei",
    "nicht auf lager",
    "nicht lagernd",
    "nicht lieferbar",
    "nicht verfügbar",
    "nicht vorrätig",
    "nicht mehr lieferbar",
    "nicht zur verfügung",
    "nie znaleziono produktów",
    "niet beschikbaar",
    "niet leverbaar",
    "niet op voorraad",
    "no disponible",
    "no featured offers available",
    "no longer available",
    "no longer in stock",
    "no tickets available",
    "non disponibile",
    "non disponible",
    "not available",
    "not currently available",
    "not in stock",
    "notify me when available",
    "notify me",
    "notify when available",
    "não disponível",
    "não estamos a aceitar encomendas",
    "out of stock",
    "out-of-stock",
    "plus disponible",
    "producto sin stock",
    "prodotto esaurito",
    "produkt niedostępny",
    "rupture",
    "sold out",
    "sold-out",
    "stok habis",
    "stok kosong",
    "stok varian ini habis",
    "stokta yok",
    "temporarily out of stock",
    "temporarily unavailable",
    "there were no search results for",
    "this item is currently unavailable",
    "tickets unavailable",
    "tidak dijual",
    "tidak tersedia",
    "tijdelijk uitverkocht",
    "tiket tidak tersedia",
    "to subscribe to back in stock",
    "tükendi",
    "unavailable nearby",
    "unavailable tickets",
    "vergriffen",
    "vorbestellen",
    "vorbestellung ist bald möglich",
    "we couldn't find any products that match",
    "we do not currently have an estimate of when this product will be back in stock.",
    "we don't currently have any",
    "we don't know when or if this item will be back in stock.",
    "we were not able to find a match",
    "when this arrives in stock",
    "when this item is available to order",
    "zur zeit nicht an lager",
    "épuisé",
    "品切れ",
    "已售",
    "已售完",
    "품절",
    "товар закінчився",
    "немає в наявності",
    "нема в наявності",
    "закінчився",
    "знято з виробництва",
    "недоступний",
    "немає на складі",
];

/// The browser scan's answer when no out-of-stock phrase decides (upstream's wording).
pub const POSSIBLY_IN_STOCK: &str = "Possibly in stock";

/// Upstream's browser scan (`stock-not-in-stock.js`) over the texts the browser collected:
/// each visible element's own text (an input's value) between 300 and 1300 px down the
/// rendered page, in document order. Read from the last: an element starting with a digit +
/// " in stock", "add to cart", "in stock" or "arrives approximately" (without "(0 products)")
/// means [`POSSIBLY_IN_STOCK`]; else the first of [`OUT_OF_STOCK_TEXTS`] an element contains,
/// again from the last element; else [`POSSIBLY_IN_STOCK`].
pub fn stock_scan<S: AsRef<str>>(texts: &[S]) -> &'static str {
    let texts: Vec<String> = texts
        .iter()
        .map(|t| t.as_ref().trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let negates = |l: &str| {
        let mut chars = l.chars();
        let digit_in_stock = chars.next().is_some_and(|c| c.is_ascii_digit())
            && chars.as_str().starts_with(" in stock");
        (digit_in_stock
            || l.starts_with("add to cart")
            || l.starts_with("in stock")
            || l.starts_with("arrives approximately"))
            && !l.contains("(0 products)")
    };
    if texts.iter().rev().any(|l| negates(l)) {
        return POSSIBLY_IN_STOCK;
    }
    texts
        .iter()
        .rev()
        .find_map(|l| OUT_OF_STOCK_TEXTS.iter().find(|p| l.contains(**p)).copied())
        .unwrap_or(POSSIBLY_IN_STOCK)
}

#[cfg(test)]
mod tests;
