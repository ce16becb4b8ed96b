//! Lazily parsed views of one document, shared by a watch's filters.

use super::*;

/// Holds every parse of the content made during one call, so several filters
/// of the same engine share a single parse.
pub(super) struct Documents<'a> {
    content: &'a str,
    kind: ContentKind,
    html: Option<Html>,
    markup: Option<Option<Document>>,
    /// XML re-parsed without default namespace declarations, for `xpath:`.
    markup_unprefixed: Option<Option<Document>>,
    json: Option<JsonSource<'a>>,
}

impl<'a> Documents<'a> {
    pub(super) fn new(content: &'a str, kind: ContentKind) -> Self {
        Documents {
            content,
            kind,
            html: None,
            markup: None,
            markup_unprefixed: None,
            json: None,
        }
    }

    pub(super) fn html(&mut self) -> &Html {
        self.html
            .get_or_insert_with(|| parse_document(self.content))
    }

    /// libxml2 tree for XPath; `None` when the content is empty (nothing can match).
    pub(super) fn markup(
        &mut self,
        default_ns_as_unprefixed: bool,
    ) -> Result<Option<&Document>, FilterError> {
        let is_xml = self.kind == ContentKind::Xml;
        if self.markup.is_none() {
            self.markup = Some(parse_markup(self.content, is_xml)?);
        }
        let needs_unprefixed = default_ns_as_unprefixed
            && is_xml
            && self
                .markup
                .as_ref()
                .and_then(Option::as_ref)
                .is_some_and(root_has_default_namespace);
        if !needs_unprefixed {
            return Ok(self.markup.as_ref().and_then(Option::as_ref));
        }
        if self.markup_unprefixed.is_none() {
            let stripped = strip_default_namespaces(self.content);
            self.markup_unprefixed = Some(parse_markup(&stripped, true)?);
        }
        Ok(self.markup_unprefixed.as_ref().and_then(Option::as_ref))
    }

    pub(super) fn json(&mut self) -> Result<&JsonSource<'a>, FilterError> {
        if self.json.is_none() {
            let source = match JsonSource::detect_direct(self.content)? {
                Some(source) => source,
                None => JsonSource::from_html(self.html())?,
            };
            self.json = Some(source);
        }
        match &self.json {
            Some(source) => Ok(source),
            None => Err(FilterError::JsonNotFound),
        }
    }
}
