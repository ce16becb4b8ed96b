//! Tags (groups of watches with shared settings) and which tags apply to a watch.

use super::*;

/// A tag (group): the watch base fields, which merge into member watches, plus its own.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tag {
    #[serde(flatten)]
    pub base: Watch,
    /// true: tag settings win over the watch's (restock config); null: undecided.
    pub overrides_watch: Option<bool>,
    /// Watches whose URL matches get this tag implicitly (see [`Tag::matches_url`]).
    pub url_match_pattern: String,
    /// `#rgb` / `#rrggbb`; absent = colour derived from the title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_colour: Option<String>,
}

/// Field-for-field twin of [`Tag`] used for loading: the flattened base would otherwise take
/// the *watch* default for `llm_backend_profile` (true) where a tag's is null.
#[derive(Deserialize)]
#[serde(default)]
pub(super) struct TagFields {
    #[serde(flatten)]
    base: Watch,
    overrides_watch: Option<bool>,
    url_match_pattern: String,
    tag_colour: Option<String>,
}

impl Default for TagFields {
    fn default() -> Self {
        let t = Tag::default();
        TagFields {
            base: t.base,
            overrides_watch: t.overrides_watch,
            url_match_pattern: t.url_match_pattern,
            tag_colour: t.tag_colour,
        }
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        let has_profile = map.contains_key("llm_backend_profile");
        let f: TagFields = serde_json::from_value(Value::Object(map)).map_err(de::Error::custom)?;
        let mut base = f.base;
        if !has_profile {
            base.llm_backend_profile = None;
        }
        Ok(Tag {
            base,
            overrides_watch: f.overrides_watch,
            url_match_pattern: f.url_match_pattern,
            tag_colour: f.tag_colour,
        })
    }
}

impl Default for Tag {
    fn default() -> Self {
        Tag {
            base: Watch {
                llm_backend_profile: None,
                ..Watch::default()
            },
            overrides_watch: None,
            url_match_pattern: String::new(),
            tag_colour: None,
        }
    }
}

impl Tag {
    pub fn new(title: &str) -> Self {
        let mut t = Tag::default();
        t.base.uuid = uuid::Uuid::new_v4().to_string();
        t.base.title = Some(title.trim().to_string());
        t.base.date_created = Some(now_epoch());
        t
    }

    pub fn uuid(&self) -> &str {
        &self.base.uuid
    }

    pub fn title(&self) -> &str {
        self.base.title.as_deref().unwrap_or("")
    }

    /// Wildcards (`*`, `?`, `[`) use shell-style matching, anything else is a
    /// case-insensitive substring test; both ignore case.
    pub fn matches_url(&self, url: &str) -> bool {
        let pattern = self.url_match_pattern.trim();
        if pattern.is_empty() || url.is_empty() {
            return false;
        }
        let (pattern, url) = (pattern.to_lowercase(), url.to_lowercase());
        if pattern.contains(['*', '?', '[']) {
            fnmatch(&url, &pattern)
        } else {
            url.contains(&pattern)
        }
    }

    /// JSON for GET /tag/{uuid}: watch-only runtime fields and internal keys removed.
    pub fn api_view(&self) -> Value {
        let mut m = to_object(self);
        strip_internal_keys(&mut m);
        m.retain(|k, _| !TAG_HIDDEN_FIELDS.contains(&k.as_str()));
        Value::Object(m)
    }

    /// One entry of GET /tags.
    pub fn api_list_entry(&self) -> Value {
        let mut m = Map::new();
        m.insert("date_created".into(), to_value(&self.base.date_created));
        m.insert(
            "notification_muted".into(),
            Value::Bool(self.base.notification_muted),
        );
        m.insert("title".into(), to_value(&self.base.title));
        m.insert("uuid".into(), Value::String(self.base.uuid.clone()));
        Value::Object(m)
    }
}

/// The watch's assigned tags that exist, in `watch.tags` order.
pub fn assigned_tags<'a>(
    watch: &Watch,
    all_tags: &'a BTreeMap<String, Tag>,
) -> Vec<(&'a str, &'a Tag)> {
    let mut seen = BTreeSet::new();
    watch
        .tags
        .iter()
        .filter(|u| seen.insert(u.as_str()))
        .filter_map(|u| all_tags.get_key_value(u.as_str()))
        .map(|(k, t)| (k.as_str(), t))
        .collect()
}

/// Every tag that applies to the watch: assigned ones, then those whose
/// `url_match_pattern` matches its URL (upstream's `get_all_tags_for_watch`).
pub fn tags_for_watch<'a>(
    watch: &Watch,
    all_tags: &'a BTreeMap<String, Tag>,
) -> Vec<(&'a str, &'a Tag)> {
    let mut out = Vec::new();
    let assigned: BTreeSet<&str> = watch.tags.iter().map(String::as_str).collect();
    for (k, t) in all_tags {
        if assigned.contains(k.as_str()) {
            out.push((k.as_str(), t));
        }
    }
    if !watch.url.is_empty() {
        for (k, t) in all_tags {
            if !assigned.contains(k.as_str()) && t.matches_url(&watch.url) {
                out.push((k.as_str(), t));
            }
        }
    }
    out
}

/// Python's `fnmatch.fnmatch` on already-lowercased strings (`*` also matches `/`).
pub(super) fn fnmatch(name: &str, pattern: &str) -> bool {
    enum Tok {
        Star,
        Any,
        Lit(char),
        Class { negate: bool, set: Vec<char> },
    }
    fn class_matches(set: &[char], c: char) -> bool {
        let mut i = 0;
        while i < set.len() {
            if i + 2 < set.len() && set[i + 1] == '-' {
                if set[i] <= c && c <= set[i + 2] {
                    return true;
                }
                i += 3;
            } else {
                if set[i] == c {
                    return true;
                }
                i += 1;
            }
        }
        false
    }
    let p: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                if !matches!(toks.last(), Some(Tok::Star)) {
                    toks.push(Tok::Star);
                }
                i += 1;
            }
            '?' => {
                toks.push(Tok::Any);
                i += 1;
            }
            '[' => {
                let mut j = i + 1;
                if j < p.len() && p[j] == '!' {
                    j += 1;
                }
                if j < p.len() && p[j] == ']' {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    toks.push(Tok::Lit('['));
                    i += 1;
                } else {
                    let inner = &p[i + 1..j];
                    let (negate, set) = match inner.first() {
                        Some('!') => (true, inner[1..].to_vec()),
                        _ => (false, inner.to_vec()),
                    };
                    toks.push(Tok::Class { negate, set });
                    i = j + 1;
                }
            }
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    let n: Vec<char> = name.chars().collect();
    let single = |t: &Tok, c: char| match t {
        Tok::Any => true,
        Tok::Lit(l) => *l == c,
        Tok::Class { negate, set } => class_matches(set, c) != *negate,
        Tok::Star => false,
    };
    // Classic wildcard matching with one backtrack point per star.
    let (mut ti, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if ti < toks.len() && !matches!(toks[ti], Tok::Star) && single(&toks[ti], n[ni]) {
            ti += 1;
            ni += 1;
        } else if ti < toks.len() && matches!(toks[ti], Tok::Star) {
            star = Some((ti, ni));
            ti += 1;
        } else if let Some((st, sn)) = star {
            ti = st + 1;
            ni = sn + 1;
            star = Some((st, sn + 1));
        } else {
            return false;
        }
    }
    toks[ti..].iter().all(|t| matches!(t, Tok::Star))
}
