#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use super::xlsx::{self, Column, Mapping};
use super::*;
use std::collections::BTreeMap;
use std::io::Write;

fn ok(r: &Row) -> &Map<String, Value> {
    r.body.as_ref().expect("an importable row")
}

#[test]
fn url_list_reads_tags_after_a_space_and_adds_the_common_tag() {
    let rows = url_list(
        "https://a.example/ t1, t2\n\n  https://b.example/  \nnot-a-url\n",
        Some("all"),
        Some("restock_diff"),
    );
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].row, 1);
    assert_eq!(
        Value::Object(ok(&rows[0]).clone()),
        json!({"url": "https://a.example/", "tag": "t1,t2,all", "processor": "restock_diff"})
    );
    assert_eq!(rows[1].row, 3);
    assert_eq!(ok(&rows[1])["tag"], json!("all"));
    assert_eq!(rows[2].row, 4);
    assert!(rows[2].body.as_ref().unwrap_err().contains("http"));
}

#[test]
fn url_list_takes_the_first_5000_and_reports_the_rest() {
    let text: String = (0..MAX_ROWS + 2)
        .map(|i| format!("https://e.example/{i}\n"))
        .collect();
    let rows = url_list(&text, None, None);
    assert_eq!(rows.len(), MAX_ROWS + 1);
    assert_eq!(rows.iter().filter(|r| r.body.is_ok()).count(), MAX_ROWS);
    assert!(rows[MAX_ROWS].rest);
    assert_eq!(rows[MAX_ROWS].row, MAX_ROWS + 1);
    assert!(rows[MAX_ROWS].body.as_ref().unwrap_err().contains("5000"));
}

#[test]
fn a_file_of_junk_lines_is_reported_up_to_a_bound() {
    let text = "x\n".repeat(1_000_000);
    let rows = url_list(&text, None, None);
    assert_eq!(rows.len(), MAX_REPORTED);
    assert!(rows[..MAX_REPORTED - 1].iter().all(|r| !r.rest));
    assert!(rows[MAX_REPORTED - 1].rest);
    let monitors: Vec<Value> = (0..MAX_REPORTED + 5)
        .map(|_| json!({"name": "no uri"}))
        .collect();
    let rows = distill_json(&json!({"data": monitors}).to_string()).unwrap();
    assert_eq!(rows.len(), MAX_REPORTED);
    assert!(rows[MAX_REPORTED - 1].rest);
}

const DISTILL: &str = r##"{"client":{"local":1},"data":[
 {"name":"Unraid | News","uri":"https://unraid.net/blog",
  "config":"{\"selections\":[{\"frames\":[{\"index\":0,\"excludes\":[{\"type\":\"css\",\"expr\":\".ad\"}],\"includes\":[{\"type\":\"xpath\",\"expr\":\"//main\"}]}],\"dynamic\":true}]}",
  "tags":["news","blog"],"schedule":"{\"type\":\"INTERVAL\",\"params\":{\"interval\":4447}}"},
 {"name":"CSS one","uri":"https://b.example/","config":"{\"selections\":[{\"frames\":[{\"includes\":[{\"type\":\"css\",\"expr\":\"#price\"}]}]}]}"},
 {"name":"no uri"},
 {"uri":"https://c.example/","config":"{broken"},
 {"uri":"https://d.example/","tags":"not a list"}
]}"##;

#[test]
fn distill_maps_name_uri_tags_and_the_first_selection() {
    let rows = distill_json(DISTILL).unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(
        Value::Object(ok(&rows[0]).clone()),
        json!({"url": "https://unraid.net/blog", "title": "Unraid | News", "tag": "news,blog",
               "subtractive_selectors": [".ad"], "include_filters": ["xpath://main"]})
    );
    assert_eq!(ok(&rows[1])["include_filters"], json!(["#price"]));
    assert!(ok(&rows[1]).get("subtractive_selectors").is_none());
    assert_eq!(rows[2].body, Err("The monitor has no \"uri\"".into()));
    assert_eq!(rows[3].body, Err("\"config\" is not valid JSON".into()));
    assert_eq!(rows[3].row, 4);
    assert_eq!(rows[4].body, Err("\"tags\" is not a list".into()));
}

#[test]
fn distill_refuses_broken_json_and_a_wrong_shape_as_upstream_words_it() {
    assert_eq!(distill_json("{nope"), Err(FormatError::BadJson));
    assert_eq!(distill_json(""), Err(FormatError::BadJson));
    assert_eq!(distill_json("[1,2]"), Err(FormatError::BadStructure));
    assert_eq!(
        distill_json(r#"{"data": []}"#),
        Err(FormatError::BadStructure)
    );
    assert_eq!(
        distill_json(r#"{"data": {}}"#),
        Err(FormatError::BadStructure)
    );
    // Nesting deeper than serde_json's recursion limit is an error, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(distill_json(&deep), Err(FormatError::BadJson));
}

#[test]
fn interval_minutes_split_like_upstream() {
    assert_eq!(
        interval_from_minutes(60 * 24 * 8 + 61),
        json!({"weeks": 1, "days": 1, "hours": 1, "minutes": 1, "seconds": 0})
    );
}

/// A workbook as small as Excel's format allows, cells as inline strings or numbers
/// (integration tests use openpyxl's files).
fn workbook(rows: &[&[&str]]) -> Vec<u8> {
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (r, row) in rows.iter().enumerate() {
        sheet += &format!(r#"<row r="{}">"#, r + 1);
        for (c, v) in row.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            let at = format!("{}{}", (b'A' + c as u8) as char, r + 1);
            if v.parse::<f64>().is_ok() {
                sheet += &format!(r#"<c r="{at}"><v>{v}</v></c>"#);
            } else {
                sheet += &format!(r#"<c r="{at}" t="inlineStr"><is><t>{v}</t></is></c>"#);
            }
        }
        sheet += "</row>";
    }
    sheet += "</sheetData></worksheet>";
    zip_of(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.as_bytes(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.as_bytes(),
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#.as_bytes(),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.as_bytes(),
        ),
        ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
    ])
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn wachete_maps_its_named_columns() {
    let book = workbook(&[
        &[
            "Name",
            " URL ",
            "XPath",
            "Interval (min)",
            "Dynamic wachet",
            "Folder",
            "Id",
        ],
        &[
            "Shop",
            "https://s.example/",
            "//p",
            "1501",
            "TRUE",
            "shops",
            "77",
        ],
        &["", "https://t.example/", "", "", "0", "", ""],
        &["Bad", "javascript:alert(1)", "", "", "", "", ""],
        &["Bad interval", "https://u.example/", "", "soon", "", "", ""],
        &["no url", "", "", "", "", "", ""],
    ]);
    let rows = xlsx::read(&book, &Mapping::Wachete).unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].row, 2);
    assert_eq!(
        Value::Object(ok(&rows[0]).clone()),
        json!({"url": "https://s.example/", "title": "Shop", "include_filters": ["//p"],
               "fetch_backend": "html_webdriver", "tag": "shops",
               "time_between_check": {"weeks": 0, "days": 1, "hours": 1, "minutes": 1, "seconds": 0}})
    );
    assert_eq!(ok(&rows[1])["fetch_backend"], json!("html_requests"));
    assert!(
        rows[2]
            .body
            .as_ref()
            .unwrap_err()
            .contains("URL value was incorrect")
    );
    assert!(rows[3].body.as_ref().unwrap_err().contains("data types"));
    assert_eq!(rows[4].body, Err("No URL in this row".into()));
}

#[test]
fn custom_mapping_reads_the_numbered_columns_of_every_row() {
    let book = workbook(&[
        &["URL", "Title", "Minutes", "Ignored"],
        &["https://a.example/", "A", "90", "x"],
    ]);
    let cols = BTreeMap::from([
        (1, Column::Url),
        (2, Column::Title),
        (3, Column::IntervalMinutes),
    ]);
    let rows = xlsx::read(&book, &Mapping::Custom(cols)).unwrap();
    assert_eq!(rows.len(), 2);
    // The header row is data under a custom mapping: its "URL" is reported.
    assert!(
        rows[0]
            .body
            .as_ref()
            .unwrap_err()
            .contains("URL value was incorrect")
    );
    assert_eq!(
        Value::Object(ok(&rows[1]).clone()),
        json!({"url": "https://a.example/", "title": "A",
               "time_between_check": {"weeks": 0, "days": 0, "hours": 1, "minutes": 30, "seconds": 0}})
    );
}

#[test]
fn xlsx_refuses_what_is_not_a_workbook() {
    for junk in [&b""[..], b"PK\x03\x04 truncated", b"hello"] {
        assert!(matches!(
            xlsx::read(junk, &Mapping::Wachete),
            Err(FormatError::BadXlsx(_))
        ));
    }
    // A zip, but no workbook in it.
    let z = zip_of(&[("a.txt", b"hi")]);
    assert!(matches!(
        xlsx::read(&z, &Mapping::Wachete),
        Err(FormatError::BadXlsx(_))
    ));
}

#[test]
fn xlsx_zip_bomb_stops_at_the_unpacked_bound() {
    // 80 MB of zeros deflates to about 80 KB.
    let zeros = vec![0u8; xlsx::MAX_UNPACKED_BYTES as usize + 16 * 1024 * 1024];
    let z = zip_of(&[("xl/worksheets/sheet1.xml", &zeros)]);
    assert!(z.len() < 1024 * 1024);
    let err = xlsx::read(&z, &Mapping::Wachete).unwrap_err();
    assert!(err.to_string().contains("unpacks to more than"), "{err}");
}

#[test]
fn xlsx_with_too_many_entries_is_refused() {
    let names: Vec<String> = (0..=xlsx::MAX_ENTRIES).map(|i| format!("f{i}")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let err = xlsx::read(&zip_of(&entries), &Mapping::Wachete).unwrap_err();
    assert!(err.to_string().contains("entries"), "{err}");
}

#[test]
fn far_apart_cells_do_not_allocate_the_space_between() {
    // A1 and XFD1048576: calamine's Range would allocate 17 billion cells.
    let mut book = workbook(&[&["url"], &["https://a.example/"]]);
    let sheet = r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>url</t></is></c></row><row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>https://far.example/</t></is></c></row></sheetData></worksheet>"#;
    // Rebuild with the far sheet.
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(&book)).unwrap();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut data).unwrap();
        entries.push((f.name().to_string(), data));
    }
    for (n, d) in &mut entries {
        if n == "xl/worksheets/sheet1.xml" {
            *d = sheet.as_bytes().to_vec();
        }
    }
    let refs: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    book = zip_of(&refs);
    let cols = BTreeMap::from([(16384, Column::Url)]);
    let rows = xlsx::read(&book, &Mapping::Custom(cols)).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].row, 1_048_576);
    assert_eq!(ok(&rows[1])["url"], json!("https://far.example/"));
}
