//! `changewatch import-datastore` on datastores the real upstream wrote: changedetection.io
//! from PyPI (`make test-deps` puts 0.60.10 and 0.50.2 in venvs of their own, `CDIO_VENV` and
//! `CDIO_050_VENV`), given watches, tags and settings through its API, checking fixture pages
//! on 127.0.0.1 that change between its rechecks, then stopped. 0.60's layout
//! (`changedetection.json` and a file per item) is imported as a directory, as upstream's
//! backup zip (made by its Backups page), through `POST /api/v1/import/datastore`, and
//! rewritten into the single-file layout; 0.50.2 writes that layout (`url-watches.json`)
//! itself and is imported as a directory and as its backup zip. Each import is compared with
//! upstream through both APIs: watches, tags, settings, history timestamps and snapshot text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Api, Server};
use serde_json::{Map, Value, json};
use testkit::{FixtureServer, Page};

/// An upstream release `make test-deps` installs in a venv of its own (`var` overrides it).
fn venv(var: &str, version: &str) -> PathBuf {
    let v = std::env::var(var).unwrap_or_else(|_| format!("/tmp/cdio-venv-{version}"));
    let v = PathBuf::from(v);
    assert!(
        v.join("bin/changedetection.py").is_file(),
        "changedetection.io {version} is not installed in {}: run `make test-deps`",
        v.display()
    );
    v
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Upstream running on a datastore directory.
struct Upstream {
    child: Child,
    base: String,
    key: String,
    http: reqwest::blocking::Client,
}

impl Upstream {
    fn start(venv: &Path, dir: &Path) -> Upstream {
        let port = free_port();
        let child = Command::new(venv.join("bin/python"))
            .arg(venv.join("bin/changedetection.py"))
            .args([
                "-d",
                dir.to_str().unwrap(),
                "-C",
                "-h",
                "127.0.0.1",
                "-l",
                "WARNING",
            ])
            .args(["-p", &port.to_string()])
            // Its address guard would refuse the fixture server on 127.0.0.1.
            .env("ALLOW_IANA_RESTRICTED_ADDRESSES", "true")
            .env("FETCH_WORKERS", "2")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.with_extension("log")).unwrap())
            .spawn()
            .unwrap();
        let mut up = Upstream {
            child,
            base: format!("http://127.0.0.1:{port}"),
            key: String::new(),
            http: reqwest::blocking::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while up.key.is_empty() {
            assert!(Instant::now() < deadline, "upstream wrote no API key");
            // 0.60 keeps it in its settings file, 0.50 in its single file.
            for file in ["changedetection.json", "url-watches.json"] {
                if let Ok(text) = std::fs::read_to_string(dir.join(file))
                    && let Ok(v) = serde_json::from_str::<Value>(&text)
                    && let Some(k) = v["settings"]["application"]["api_access_token"].as_str()
                {
                    up.key = k.to_string();
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        loop {
            assert!(Instant::now() < deadline, "upstream did not start");
            if up
                .http
                .get(format!("{}/api/v1/watch", up.base))
                .header("x-api-key", &up.key)
                .send()
                .is_ok()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        up
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "DELETE" => self.http.delete(url),
            _ => unreachable!(),
        }
        .header("x-api-key", &self.key);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        assert!(status < 300, "upstream {method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    fn history(&self, uuid: &str) -> Vec<String> {
        let h = self.call("GET", &format!("/api/v1/watch/{uuid}/history"), None);
        let mut keys: Vec<String> = h.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Its Backups page's "create backup": 0.60's CSRF-protected form (a POST with the session
    /// cookie), 0.50's link (a GET); the zip appears in the datastore when done.
    fn request_backup(&self, dir: &Path) -> PathBuf {
        let page = self
            .http
            .get(format!("{}/backups/", self.base))
            .send()
            .unwrap();
        let cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let html = page.text().unwrap();
        let token = html
            .split("name=\"csrf_token\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next());
        let url = format!("{}/backups/request-backup", self.base);
        let r = match token {
            Some(token) => self
                .http
                .post(url)
                .header("cookie", cookie)
                .form(&[("csrf_token", token)])
                .send(),
            None => self.http.get(url).send(),
        }
        .unwrap();
        let (status, landed) = (r.status(), r.url().to_string());
        let answer = r.text().unwrap_or_default();
        assert!(status.is_success(), "{status}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let zip = std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.extension().is_some_and(|e| e == "zip")
                        && p.file_name()
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .starts_with("changedetection-backup-")
                });
            if let Some(z) = zip {
                return z;
            }
            assert!(
                Instant::now() < deadline,
                "upstream made no backup zip; the form landed on {landed}: {}; its log: {}",
                answer.chars().take(2000).collect::<String>(),
                std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM: 0.50 writes its single file on it. 0.60.10 does not exit on SIGTERM while its
    /// threads run; its writes are atomic renames made as they happen, so once it has
    /// answered every call the files are complete.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What upstream's API shows of its datastore, the yardstick of every import.
struct Seen {
    watches: BTreeMap<String, Value>,
    history: BTreeMap<String, Vec<(String, String)>>,
    tags: Value,
    /// Each tag as `GET /api/v1/tag/{uuid}` shows it.
    tag_views: BTreeMap<String, Value>,
    notifications: Value,
}

fn page_a(round: u32) -> String {
    format!(
        "<html><head><title>Page A</title></head><body><nav>menu</nav>\
         <div id=\"content\"><p>Price list, round {round}</p><p>Item {round} costs {} EUR</p></div></body></html>",
        10 + round
    )
}

/// Text well over upstream's 20 KB brotli threshold.
fn page_big(round: u32) -> String {
    let mut s = String::from("<html><body>");
    for i in 0..1200 {
        s.push_str(&format!(
            "<p>Line {i} of the long page, version {round}.</p>"
        ));
    }
    s.push_str("</body></html>");
    s
}

/// Watch fields compared between upstream's GET and ours.
const COMPARED: &[&str] = &[
    "url",
    "title",
    "tags",
    "paused",
    "notification_muted",
    "notification_urls",
    "notification_title",
    "notification_body",
    "include_filters",
    "subtractive_selectors",
    "ignore_text",
    "trigger_text",
    "time_between_check_use_default",
    "method",
    "fetch_backend",
    "processor",
    "date_created",
    "last_checked",
    "last_changed",
    "history_n",
    "last_viewed",
    "viewed",
    "previous_md5",
    "check_count",
    "page_title",
];

fn compare(seen: &Seen, api: &Api, label: &str) {
    let (status, list) = api.get("/api/v1/watch");
    assert_eq!(status, 200, "{label}: {list}");
    let mut ours: Vec<&String> = list.as_object().unwrap().keys().collect();
    ours.sort();
    let theirs: Vec<&String> = seen.watches.keys().collect();
    assert_eq!(ours, theirs, "{label}: the same watch uuids");
    for (uuid, up) in &seen.watches {
        let (status, w) = api.get(&format!("/api/v1/watch/{uuid}"));
        assert_eq!(status, 200, "{label}: {w}");
        for f in COMPARED {
            assert_eq!(w[f], up[f], "{label}: watch {uuid} field {f}");
        }
        let (_, h) = api.get(&format!("/api/v1/watch/{uuid}/history"));
        let mut keys: Vec<String> = h.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let want: Vec<String> = seen.history[uuid].iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, want, "{label}: watch {uuid} history timestamps");
        for (ts, text) in &seen.history[uuid] {
            let r = api
                .http
                .get(format!("{}/api/v1/watch/{uuid}/history/{ts}", api.base))
                .header("x-api-key", &api.key)
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            assert_eq!(
                &r.text().unwrap(),
                text,
                "{label}: watch {uuid} snapshot {ts}"
            );
        }
    }
    let (_, tags) = api.get("/api/v1/tags");
    let titles = |v: &Value| -> BTreeMap<String, Value> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, t)| (k.clone(), t["title"].clone()))
            .collect()
    };
    assert_eq!(titles(&tags), titles(&seen.tags), "{label}: tags");
    for uuid in seen.tags.as_object().unwrap().keys() {
        let (_, ours) = api.get(&format!("/api/v1/tag/{uuid}"));
        for f in [
            "title",
            "notification_urls",
            "notification_muted",
            "date_created",
        ] {
            assert_eq!(
                ours[f], seen.tag_views[uuid][f],
                "{label}: tag {uuid} field {f}"
            );
        }
    }
    let (_, n) = api.get("/api/v1/notifications");
    assert_eq!(n, seen.notifications, "{label}: global notification URLs");
}

fn import(args: &[&str], into: &Path) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_changewatch"))
        .arg("import-datastore")
        .args(args)
        .args([
            "--json",
            "--progress-every",
            "1",
            "-d",
            into.to_str().unwrap(),
        ])
        .env_remove("API_ACCESS_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "import failed: {stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

/// The older layout from 0.60's files, as upstream's loader reads it: one `url-watches.json`
/// with `watching` and `settings.application.tags`, and the watch folders beside it.
fn legacy_layout(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(from.join("changedetection.json")).unwrap())
            .unwrap();
    let mut watching = Map::new();
    let mut tags = Map::new();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let uuid = entry.file_name().to_str().unwrap().to_string();
        let read = |f: &str| -> Option<Value> {
            std::fs::read_to_string(path.join(f))
                .ok()
                .map(|t| serde_json::from_str(&t).unwrap())
        };
        if let Some(t) = read("tag.json") {
            tags.insert(uuid.clone(), t);
            continue;
        }
        let Some(w) = read("watch.json") else {
            continue;
        };
        watching.insert(uuid.clone(), w);
        std::fs::create_dir_all(to.join(&uuid)).unwrap();
        for f in std::fs::read_dir(&path).unwrap().flatten() {
            if f.file_name() != "watch.json" {
                std::fs::copy(f.path(), to.join(&uuid).join(f.file_name())).unwrap();
            }
        }
    }
    doc["watching"] = Value::Object(watching);
    doc["settings"]["application"]["tags"] = Value::Object(tags);
    std::fs::write(
        to.join("url-watches.json"),
        serde_json::to_vec_pretty(&doc).unwrap(),
    )
    .unwrap();
}

/// What one run of upstream left: its datastore directory, its backup zip, what its API
/// showed before it stopped, and its API key.
struct Produced {
    tmp: tempfile::TempDir,
    up_dir: PathBuf,
    backup: PathBuf,
    seen: Seen,
    key: String,
    /// Kept up until the end: nothing checks the imported watches (they are not due), but a
    /// stray check would then see the same pages.
    _site: FixtureServer,
}

/// Upstream from `venv` on a fresh datastore: a tag with a notification URL, three watches
/// (filters, a notification URL and title template, a legacy tag name, one paused), a global
/// notification URL, three recheck rounds on pages that change between them, a backup zip
/// from its Backups page; then stopped.
fn produce(venv: &Path) -> Produced {
    // Not tempfile's default `.tmp` prefix: upstream's backup renames its `.tmp` file to
    // `.zip` by replacing every `.tmp` in the whole path.
    let tmp = tempfile::Builder::new()
        .prefix("cw-import-")
        .tempdir()
        .unwrap();
    let up_dir = tmp.path().join("upstream");
    let site = FixtureServer::start();
    site.set("/a", Page::html(page_a(0)));
    site.set("/big", Page::html(page_big(0)));
    site.set(
        "/still",
        Page::html("<html><body><p>Quiet page</p></body></html>"),
    );

    let up = Upstream::start(venv, &up_dir);
    // A fresh upstream datastore starts with example watches (and their tags, kept: they
    // are part of what is imported).
    let examples = up.call("GET", "/api/v1/watch", None);
    for uuid in examples.as_object().unwrap().keys() {
        up.call("DELETE", &format!("/api/v1/watch/{uuid}"), None);
    }
    let tag = up.call(
        "POST",
        "/api/v1/tag",
        Some(json!({"title": "Prices", "notification_urls": ["json://127.0.0.1:9/tag-hook"]})),
    );
    let tag = tag["uuid"].as_str().unwrap().to_string();
    let a = up.call(
        "POST",
        "/api/v1/watch",
        Some(json!({
            "url": site.url("/a"),
            "title": "Page A",
            "tags": [tag],
            "include_filters": ["#content"],
            "notification_urls": ["json://127.0.0.1:9/a-hook"],
            "notification_title": "Changed: {{watch_url}}",
        })),
    );
    let big = up.call(
        "POST",
        "/api/v1/watch",
        Some(json!({"url": site.url("/big"), "title": "Long page", "tag": "Archive"})),
    );
    let still = up.call(
        "POST",
        "/api/v1/watch",
        Some(json!({"url": site.url("/still")})),
    );
    let [a, big, still] = [a, big, still].map(|v| v["uuid"].as_str().unwrap().to_string());
    up.call(
        "POST",
        "/api/v1/notifications",
        Some(json!({"notification_urls": ["json://127.0.0.1:9/everything"]})),
    );

    // Three rounds of changed pages, each recorded before the next (a second apart, so
    // every snapshot has a timestamp of its own).
    for round in 0..3u32 {
        site.set("/a", Page::html(page_a(round)));
        site.set("/big", Page::html(page_big(round)));
        let watches: Vec<&String> = match round {
            0 => vec![&a, &big, &still],
            _ => vec![&a, &big],
        };
        for w in &watches {
            up.call("GET", &format!("/api/v1/watch/{w}?recheck=1"), None);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !watches.iter().all(|w| up.history(w).len() > round as usize) {
            assert!(
                Instant::now() < deadline,
                "upstream did not record round {round}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    up.call("GET", &format!("/api/v1/watch/{still}?paused=paused"), None);

    let mut seen = Seen {
        watches: BTreeMap::new(),
        history: BTreeMap::new(),
        tags: up.call("GET", "/api/v1/tags", None),
        tag_views: BTreeMap::new(),
        notifications: up.call("GET", "/api/v1/notifications", None),
    };
    for uuid in seen.tags.as_object().unwrap().keys() {
        let view = up.call("GET", &format!("/api/v1/tag/{uuid}"), None);
        seen.tag_views.insert(uuid.clone(), view);
    }
    // 0.50's tag API takes the title only; 0.60 keeps the URL (and the import must too).
    if up_dir.join("changedetection.json").is_file() {
        assert_eq!(
            seen.tag_views[&tag]["notification_urls"],
            json!(["json://127.0.0.1:9/tag-hook"])
        );
    }
    for w in [&a, &big, &still] {
        seen.watches.insert(
            w.clone(),
            up.call("GET", &format!("/api/v1/watch/{w}"), None),
        );
        let snaps = up
            .history(w)
            .into_iter()
            .map(|ts| {
                let text = up.call("GET", &format!("/api/v1/watch/{w}/history/{ts}"), None);
                (ts, text.as_str().unwrap().to_string())
            })
            .collect();
        seen.history.insert(w.clone(), snaps);
    }
    assert_eq!(seen.history[&a].len(), 3);
    assert_eq!(seen.history[&still].len(), 1);
    let backup = up.request_backup(&up_dir);
    let key = up.key.clone();
    up.stop();
    let brotli = std::fs::read_dir(up_dir.join(&big))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().unwrap().ends_with(".txt.br"))
        .count();
    assert_eq!(
        brotli, 3,
        "upstream stored the long page's snapshots brotli-compressed"
    );

    Produced {
        tmp,
        up_dir,
        backup,
        seen,
        key,
        _site: site,
    }
}

#[test]
fn an_upstream_0_60_datastore_comes_over_whole() {
    let Produced {
        tmp,
        up_dir,
        backup,
        seen,
        key,
        _site,
    } = produce(&venv("CDIO_VENV", "0.60.10"));
    assert!(
        up_dir.join("changedetection.json").is_file(),
        "0.60's layout"
    );

    // A dry run reports what a run would do and writes nothing.
    let cw = tmp.path().join("cw");
    let (dry, _) = import(&["--dry-run", up_dir.to_str().unwrap()], &cw);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["watches"]["added"], 3, "{dry}");
    assert_eq!(dry["snapshots"]["added"], 7, "{dry}");

    let (report, progress) = import(&[up_dir.to_str().unwrap()], &cw);
    assert_eq!(report["layout"], "changedetection.json");
    assert_eq!(report["settings"], "imported");
    assert_eq!(
        report["watches"],
        json!({"added": 3, "present": 0, "refused": 0}),
        "{report}"
    );
    assert_eq!(
        report["snapshots"],
        json!({"added": 7, "present": 0, "refused": 0}),
        "{report}"
    );
    assert_eq!(
        report["problems"],
        json!([]),
        "nothing upstream wrote was left out"
    );
    let (dry_again, _) = import(&["--dry-run", up_dir.to_str().unwrap()], &cw);
    assert_eq!(
        dry["tags"], report["tags"],
        "the dry run counted what the run did"
    );
    assert_eq!(dry_again["watches"]["present"], 3);
    assert!(
        progress.contains("import-datastore: 3/3 watches"),
        "{progress}"
    );

    // A second run changes nothing.
    let (again, _) = import(&[up_dir.to_str().unwrap()], &cw);
    assert_eq!(again["settings"], "unchanged", "{again}");
    assert_eq!(
        again["watches"],
        json!({"added": 0, "present": 3, "refused": 0})
    );
    assert_eq!(
        again["snapshots"],
        json!({"added": 0, "present": 7, "refused": 0})
    );
    assert_eq!(again["tags"]["added"], 0);

    // Upstream's API key came along: its clients keep working.
    let server = Server::start(&cw, None);
    let api = Api::new(&server.base, &key);
    compare(&seen, &api, "directory");
    let (_, settings) = api.get("/ui/settings");
    assert_eq!(
        settings["notification_urls"],
        json!(["json://127.0.0.1:9/everything"])
    );
    drop(server);

    // Upstream's backup zip, through the CLI.
    let from_zip = tmp.path().join("cw-zip");
    let (report, _) = import(&[backup.to_str().unwrap()], &from_zip);
    assert_eq!(report["snapshots"]["added"], 7, "{report}");
    let server = Server::start(&from_zip, None);
    compare(&seen, &Api::new(&server.base, &key), "backup zip");
    drop(server);

    // The same zip uploaded to a running server (its own key until the import brings
    // upstream's).
    let uploaded = tmp.path().join("cw-upload");
    let server = Server::start(&uploaded, Some("local-key"));
    let zip_bytes = std::fs::read(&backup).unwrap();
    let post = |query: &str| {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/import/datastore{query}", server.base))
            .header("x-api-key", "local-key")
            .header("content-type", "application/zip")
            .body(zip_bytes.clone())
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    let (status, dry) = post("?dry_run=true");
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["watches"]["added"], 3);
    let (_, list) = Api::new(&server.base, "local-key").get("/api/v1/watch");
    assert_eq!(list, json!({}), "a dry run wrote nothing");
    let (status, done) = post("");
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["snapshots"]["added"], 7, "{done}");
    assert_eq!(
        done["problems"],
        json!([{"item": "settings", "field": "api_access_token",
            "reason": "upstream's API key is not taken: this server's key stays in force"}]),
        "the uploader's key stays in force"
    );
    // API_ACCESS_TOKEN fixes this server's key; the stored one is upstream's.
    compare(&seen, &Api::new(&server.base, "local-key"), "uploaded zip");
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/import/datastore", server.base))
        .body(zip_bytes.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "the upload needs the API key");
    drop(server);

    // The older single-file layout.
    let legacy = tmp.path().join("legacy");
    legacy_layout(&up_dir, &legacy);
    let from_legacy = tmp.path().join("cw-legacy");
    let (report, _) = import(&[legacy.to_str().unwrap()], &from_legacy);
    assert_eq!(report["layout"], "url-watches.json");
    assert_eq!(report["problems"], json!([]), "{report}");
    let server = Server::start(&from_legacy, None);
    compare(&seen, &Api::new(&server.base, &key), "url-watches.json");
}

#[test]
fn an_upstream_0_50_datastore_in_the_single_file_layout_comes_over() {
    let Produced {
        tmp,
        up_dir,
        backup,
        seen,
        key,
        _site,
    } = produce(&venv("CDIO_050_VENV", "0.50.2"));
    assert!(
        up_dir.join("url-watches.json").is_file(),
        "0.50 writes the single file"
    );
    assert!(!up_dir.join("changedetection.json").exists());

    let cw = tmp.path().join("cw");
    let (report, _) = import(&[up_dir.to_str().unwrap()], &cw);
    assert_eq!(report["layout"], "url-watches.json");
    assert_eq!(
        report["watches"],
        json!({"added": 3, "present": 0, "refused": 0}),
        "{report}"
    );
    assert_eq!(report["snapshots"]["added"], 7, "{report}");
    // Its notification format labels and RSS format name go through upstream's own
    // migrations: nothing is left out.
    assert_eq!(report["problems"], json!([]), "{report}");
    let (again, _) = import(&[up_dir.to_str().unwrap()], &cw);
    assert_eq!(again["settings"], "unchanged", "{again}");
    assert_eq!(again["snapshots"]["added"], 0);
    let server = Server::start(&cw, None);
    compare(&seen, &Api::new(&server.base, &key), "0.50 directory");
    drop(server);

    let from_zip = tmp.path().join("cw-zip");
    let (report, _) = import(&[backup.to_str().unwrap()], &from_zip);
    assert_eq!(report["layout"], "url-watches.json");
    assert_eq!(report["snapshots"]["added"], 7, "{report}");
    let server = Server::start(&from_zip, None);
    compare(&seen, &Api::new(&server.base, &key), "0.50 backup zip");
}
