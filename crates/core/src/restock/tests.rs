use super::*;

fn page(head: &str, body: &str) -> String {
    format!("<!doctype html><html><head>{head}</head><body>{body}</body></html>")
}

fn ld(json: &str) -> String {
    format!(r#"<script type="application/ld+json">{json}</script>"#)
}

#[test]
fn jsonld_product_with_offer() {
    let html = page(
        &ld(
            r#"{"@context":"https://schema.org","@type":"Product","name":"Kettle",
            "offers":{"@type":"Offer","price":"10.00","priceCurrency":"EUR",
            "availability":"https://schema.org/InStock"}}"#,
        ),
        "<h1>Kettle</h1>",
    );
    let got = extract(&html).unwrap();
    assert_eq!(got.price, Some(10.0));
    assert_eq!(got.currency.as_deref(), Some("EUR"));
    assert_eq!(got.availability.as_deref(), Some("instock"));
    assert_eq!(got.in_stock, Some(true));
    assert_eq!(
        snapshot_text(got.in_stock, got.price),
        "In Stock: True - Price: 10.0"
    );
}

#[test]
fn jsonld_graph_and_top_level_array() {
    let graph = ld(r#"{"@context":"https://schema.org","@graph":[
        {"@type":"WebPage","name":"x"},
        {"@type":"Product","offers":[{"@type":"Offer","price":24.5,
          "priceCurrency":"USD","availability":"http://schema.org/OutOfStock"}]}]}"#);
    let got = extract(&page(&graph, "")).unwrap();
    assert_eq!(got.price, Some(24.5));
    assert_eq!(got.in_stock, Some(false));
    assert_eq!(
        snapshot_text(got.in_stock, got.price),
        "In Stock: False - Price: 24.5"
    );

    let array = ld(
        r#"[{"@type":"BreadcrumbList"},{"@type":"Product","offers":{"@type":"AggregateOffer",
        "lowPrice":"5","highPrice":"9","offers":[{"@type":"Offer","price":"7.99",
        "availability":"LimitedAvailability"}]}}]"#,
    );
    let got = extract(&page(&array, "")).unwrap();
    assert_eq!(got.price, Some(7.99));
    assert_eq!(got.in_stock, Some(true));
}

#[test]
fn several_offers_first_wins_when_the_quick_pass_has_everything() {
    let html = page(
        &ld(r#"{"@type":"Product","offers":[
            {"@type":"Offer","price":"19.99","availability":"InStock"},
            {"@type":"Offer","price":"29.99","availability":"OutOfStock"}]}"#),
        "",
    );
    let got = extract(&html).unwrap();
    assert_eq!(got.price, Some(19.99));
    assert_eq!(got.in_stock, Some(true));
}

#[test]
fn several_prices_without_availability_are_refused() {
    let html = page(
        &ld(r#"{"@type":"ItemList","itemListElement":[
            {"@type":"Product","offers":{"price":"1.00"}},
            {"@type":"Product","offers":{"price":"2.00"}}]}"#),
        "",
    );
    assert!(matches!(extract(&html), Err(RestockError::MoreThanOnePrice(p)) if p.len() == 2));

    // The same price spelled twice is one price.
    let html = page(
        &format!(
            "{}{}",
            ld(r#"{"offers":{"price":"159"}}"#),
            ld(r#"{"offers":{"price":159}}"#)
        ),
        r#"<span itemprop="price">$159.00</span>"#,
    );
    assert_eq!(extract(&html).unwrap().price, Some(159.0));
}

#[test]
fn opengraph_product_tags() {
    let head = r#"<meta property="og:type" content="product">
        <meta property="product:price:amount" content="1,299">
        <meta property="product:price:currency" content="GBP">
        <meta property="og:availability" content="in stock">"#;
    let got = extract(&page(head, "")).unwrap();
    assert_eq!(got.price, Some(1299.0));
    assert_eq!(got.currency.as_deref(), Some("GBP"));
    assert_eq!(got.availability.as_deref(), Some("instock"));
    assert_eq!(got.in_stock, Some(true));

    let head = r#"<meta property="og:price:amount" content="39,99">
        <meta property="og:price:currency" content="EUR">
        <meta property="og:availability" content="out of stock">"#;
    let got = extract(&page(head, "")).unwrap();
    assert_eq!(got.price, Some(39.99));
    assert_eq!(got.in_stock, Some(false));
}

#[test]
fn microdata() {
    let body = r#"<div itemscope itemtype="https://schema.org/Product">
        <span itemprop="name">Lamp</span>
        <div itemprop="offers" itemscope itemtype="https://schema.org/Offer">
          <span itemprop="priceCurrency" content="USD">$</span>
          <span itemprop="price">1.400,50</span>
          <link itemprop="availability" href="https://schema.org/PreSale">Pre-order</link>
        </div></div>"#;
    let got = extract(&page("", body)).unwrap();
    assert_eq!(got.price, Some(1400.5));
    assert_eq!(got.currency.as_deref(), Some("USD"));
    assert_eq!(got.availability.as_deref(), Some("presale"));
    assert_eq!(got.in_stock, Some(true));
}

#[test]
fn jsonld_price_with_og_availability() {
    let head = format!(
        r#"{}<meta property="og:availability" content="oos">"#,
        ld(r#"{"@type":"Product","offers":{"price":"12"}}"#)
    );
    let got = extract(&page(&head, "")).unwrap();
    assert_eq!(got.price, Some(12.0));
    assert_eq!(got.in_stock, Some(false));
}

#[test]
fn nothing_found_and_broken_jsonld() {
    let html = page(&ld("{not json"), "<p>Just a page</p>");
    let got = extract(&html).unwrap();
    assert!(!got.found_anything());
    assert_eq!(got.in_stock, None);
    assert_eq!(
        snapshot_text(got.in_stock, got.price),
        "In Stock: None - Price:"
    );
}

#[test]
fn currency_parsing() {
    assert_eq!(parse_currency("$1,299.00"), Some(1299.0));
    assert_eq!(parse_currency("1.299,00 €"), Some(1299.0));
    assert_eq!(parse_currency("39,99"), Some(39.99));
    assert_eq!(parse_currency("1,299"), Some(1299.0));
    assert_eq!(parse_currency("10"), Some(10.0));
    assert_eq!(parse_currency("Free"), None);
    assert_eq!(parse_currency("1.2.3"), None);
}

#[test]
fn python_float_spelling() {
    assert_eq!(py_float(10.0), "10.0");
    assert_eq!(py_float(0.99), "0.99");
    assert_eq!(py_float(1400.5), "1400.5");
}

#[test]
fn out_of_stock_phrases() {
    assert_eq!(stock_scan(&["Kettle", "£20", "Sold out"]), "sold out");
    assert_eq!(
        stock_scan(&["Kettle", "Nicht auf Lager"]),
        "nicht auf lager"
    );
    assert_eq!(
        stock_scan(&["Kettle", "Add to cart", "Notify me"]),
        POSSIBLY_IN_STOCK
    );
    assert_eq!(stock_scan(&["Kettle", "£20"]), POSSIBLY_IN_STOCK);
    assert_eq!(
        stock_scan(&["3 in stock (0 products)", "Sold out"]),
        "sold out"
    );
}

#[test]
fn work_is_bounded() {
    let mut blocks = String::new();
    for i in 0..(MAX_JSONLD_BLOCKS + 10) {
        blocks.push_str(&ld(&format!(r#"{{"n":{i}}}"#)));
    }
    blocks.push_str(&ld(r#"{"offers":{"price":"3","availability":"InStock"}}"#));
    let got = extract(&page(&blocks, "")).unwrap();
    assert_eq!(got.price, None);
}

fn product(avail: &str, price: &str) -> String {
    page(
        &ld(&format!(
            r#"{{"@type":"Product","offers":{{"@type":"Offer","price":"{price}","priceCurrency":"EUR","availability":"https://schema.org/{avail}"}}}}"#
        )),
        "",
    )
}

fn state(in_stock: bool, price: f64) -> Restock {
    Restock {
        in_stock: Some(in_stock),
        price: Some(price),
        currency: Some("EUR".into()),
        last_price: None,
    }
}

#[test]
fn check_keeps_last_price_and_builds_the_snapshot() {
    let cfg = RestockConfig::default();
    let first = check(&product("InStock", "10"), 200, &cfg, None, None).unwrap();
    assert_eq!(first.text, "In Stock: True - Price: 10.0");
    assert_eq!(first.restock.last_price, None);
    // Same price: the reference stays.
    let mut old = first.restock.clone();
    old.last_price = Some(12.0);
    let same = check(&product("InStock", "10"), 200, &cfg, Some(&old), None).unwrap();
    assert_eq!(same.restock.last_price, Some(12.0));
    assert!(!same.changed);
    // Moved: the old price becomes the reference.
    let moved = check(&product("InStock", "8"), 200, &cfg, Some(&old), None).unwrap();
    assert_eq!(moved.restock.last_price, Some(10.0));
    assert!(moved.changed);
}

#[test]
fn check_without_data_is_upstreams_error() {
    let cfg = RestockConfig::default();
    let err = check("<p>hello</p>", 200, &cfg, None, None).unwrap_err();
    assert!(err.starts_with("Unable to extract restock data for this page unfortunately. (Got code 200 from server), no embedded stock information was found"), "{err}");
    let off = RestockConfig {
        in_stock_processing: "off".into(),
        ..RestockConfig::default()
    };
    let err = check("<p>hello</p>", 200, &off, None, None).unwrap_err();
    assert!(err.starts_with("Unable to extract price data"), "{err}");
}

#[test]
fn in_stock_processing_modes() {
    let only = RestockConfig {
        follow_price_changes: false,
        ..RestockConfig::default()
    };
    let all = RestockConfig {
        in_stock_processing: "all_changes".into(),
        ..only.clone()
    };
    let off = RestockConfig {
        in_stock_processing: "off".into(),
        ..only.clone()
    };
    let (out, back) = (state(false, 10.0), state(true, 10.0));
    assert!(decide(&only, &out, &back));
    assert!(!decide(&only, &back, &out));
    assert!(decide(&all, &back, &out));
    assert!(decide(&all, &out, &back));
    assert!(!decide(&off, &out, &back));
    assert!(!decide(&all, &back, &back));
}

#[test]
fn price_rules() {
    let follow = RestockConfig {
        in_stock_processing: "off".into(),
        ..RestockConfig::default()
    };
    assert!(decide(&follow, &state(true, 10.0), &state(true, 9.0)));
    assert!(!decide(&follow, &state(true, 10.0), &state(true, 10.0)));
    let not_following = RestockConfig {
        follow_price_changes: false,
        ..follow.clone()
    };
    assert!(!decide(
        &not_following,
        &state(true, 10.0),
        &state(true, 9.0)
    ));

    // Only outside [min, max] is a move reported.
    let limits = RestockConfig {
        price_change_min: Some(5.0),
        price_change_max: Some(20.0),
        ..follow.clone()
    };
    assert!(!decide(&limits, &state(true, 10.0), &state(true, 9.0)));
    assert!(decide(&limits, &state(true, 10.0), &state(true, 4.0)));
    assert!(decide(&limits, &state(true, 10.0), &state(true, 25.0)));

    // A move of at most the threshold percent is not a change.
    let pct = RestockConfig {
        price_change_threshold_percent: Some(10.0),
        ..follow.clone()
    };
    assert!(!decide(&pct, &state(true, 100.0), &state(true, 95.0)));
    assert!(!decide(&pct, &state(true, 100.0), &state(true, 110.0)));
    assert!(decide(&pct, &state(true, 100.0), &state(true, 111.0)));
    // In-stock news is subject to the price rules too (upstream's order).
    let both = RestockConfig {
        in_stock_processing: "in_stock_only".into(),
        ..limits
    };
    assert!(!decide(&both, &state(false, 10.0), &state(true, 10.0)));
}

#[test]
fn previous_price_from_a_snapshot() {
    assert_eq!(
        price_in_snapshot("In Stock: True - Price: 10.0").as_deref(),
        Some("10.0")
    );
    assert_eq!(
        price_in_snapshot("In Stock: True - Price: 1299").as_deref(),
        Some("1299")
    );
    assert_eq!(price_in_snapshot("In Stock: None - Price:"), None);
}

#[test]
fn the_pipeline_runs_the_restock_processor() {
    use crate::pipeline::{ChangeStatus, PreviousState, ProcessorSettings, process};
    let html = product("OutOfStock", "19.99");
    let page = crate::fetch::FetchedPage {
        final_url: "http://127.0.0.1/p".into(),
        status: 200,
        content_type: Some("text/html".into()),
        server: None,
        headers: Vec::new(),
        raw: html.clone().into_bytes(),
        text: html,
        encoding: "UTF-8",
        fetch_time: 0.1,
        screenshot: None,
        stock_scan: None,
    };
    let settings = ProcessorSettings {
        restock: Some(RestockConfig::default()),
        // Ignored by the restock processor, as upstream.
        include_filters: vec!["#nothing".into()],
        ..ProcessorSettings::default()
    };
    let first = process(&page, &settings, &PreviousState::default()).unwrap();
    assert_eq!(first.status, ChangeStatus::Baseline);
    assert_eq!(first.text, "In Stock: False - Price: 19.99");
    assert_eq!(
        first.md5,
        format!("{:x}", md5::compute(first.text.as_bytes()))
    );
    let restock = first.restock.clone().unwrap();
    assert_eq!(
        (restock.in_stock, restock.price),
        (Some(false), Some(19.99))
    );

    let previous = PreviousState {
        md5: Some(first.md5.clone()),
        has_history: true,
        restock: Some(state(true, 19.99)),
        ..PreviousState::default()
    };
    // In stock → out of stock is not news under in_stock_only.
    let again = process(&page, &settings, &previous).unwrap();
    assert_eq!(again.status, ChangeStatus::Unchanged);
}

#[test]
fn a_browser_scan_decides_what_the_data_leaves_open_and_overrides_its_in_stock() {
    let cfg = RestockConfig::default();
    // No data at all: a browser check is never upstream's "unable to extract" error.
    let v = check("<p>hello</p>", 200, &cfg, None, Some(POSSIBLY_IN_STOCK)).unwrap();
    assert_eq!(v.restock.in_stock, Some(true));
    assert_eq!(v.text, "In Stock: True - Price:");
    let v = check("<p>hello</p>", 200, &cfg, None, Some("sold out")).unwrap();
    assert_eq!(v.restock.in_stock, Some(false));
    // The data says in stock, the page's text says sold out: the text wins.
    let v = check(&product("InStock", "10"), 200, &cfg, None, Some("sold out")).unwrap();
    assert_eq!(v.restock.in_stock, Some(false));
    assert_eq!(v.text, "In Stock: False - Price: 10.0");
    // The data's own "out of stock" is kept when the scan finds nothing.
    let v = check(
        &product("OutOfStock", "10"),
        200,
        &cfg,
        None,
        Some(POSSIBLY_IN_STOCK),
    )
    .unwrap();
    assert_eq!(v.restock.in_stock, Some(false));
}
