//! The files `infra/README.md` hands to `sam local` (which needs Docker, so nothing here runs
//! it): the env-vars file may only name functions and variables the template declares for them
//! (SAM drops anything else silently, so a misnamed variable would quietly do nothing), and
//! each event file is what its function takes. The README names every file, and every file
//! it names exists.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};

use aws_lambda_events::event::sqs::SqsEvent;
use changewatch_e2e::template::Template;
use changewatch_store::CheckJob;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_json(rel: &str) -> Value {
    let path = root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_env_vars_file_names_only_what_the_template_declares() {
    let template = Template::load().unwrap();
    let env = read_json("infra/local/env.json");
    let env = env.as_object().expect("an object of functions");
    let functions = template.resources_of_type("AWS::Serverless::Function");
    for f in &functions {
        assert!(env.contains_key(f), "infra/local/env.json lacks {f}");
    }
    for (function, vars) in env {
        assert!(
            functions.contains(function),
            "{function} is not a function of the template"
        );
        let declared = template.declared_variables(function).unwrap();
        let vars = vars.as_object().expect("variables as an object");
        assert!(!vars.is_empty(), "{function}: no variables");
        for (name, value) in vars {
            assert!(
                declared.contains(name),
                "{function}: {name} is not declared for it in the template (sam local would drop it)"
            );
            assert!(
                value.as_str().is_some_and(|v| !v.is_empty()),
                "{function}: {name} must be a non-empty string"
            );
        }
        // What a function needs to reach its tables and queues is there to fill in.
        for needed in [
            "CW_WATCHES_TABLE",
            "CW_SNAPSHOTS_TABLE",
            "CW_CHECKS_QUEUE_URL",
        ] {
            assert!(vars.contains_key(needed), "{function}: {needed} missing");
        }
    }
}

#[test]
fn the_event_files_are_what_the_functions_take() {
    // The api function: an HTTP API (payload 2.0) request lambda_http accepts.
    let http = read_json("infra/local/events/http-api.json");
    let req = lambda_http::request::from_str(&http.to_string()).expect("an HTTP API event");
    assert!(req.uri().path().starts_with('/'));

    // The checker: SQS batches; the check-job one carries a job the checker can read.
    let job: SqsEvent =
        serde_json::from_value(read_json("infra/local/events/sqs-check-job.json")).unwrap();
    assert_eq!(job.records.len(), 1);
    let body = job.records[0].body.as_deref().unwrap();
    let parsed: CheckJob = serde_json::from_str(body).expect("a check job");
    assert_eq!(parsed.tenant, "default");
    assert!(job.records[0].receipt_handle.is_some());
    let junk: SqsEvent =
        serde_json::from_value(read_json("infra/local/events/sqs-not-a-job.json")).unwrap();
    let body = junk.records[0].body.as_deref().unwrap();
    assert!(
        serde_json::from_str::<CheckJob>(body).is_err(),
        "the poison example is not a job"
    );

    // The scheduler: the schedule's event (the function reads nothing from it).
    assert!(read_json("infra/local/events/schedule.json").is_object());
}

#[test]
fn the_readme_and_the_files_agree() {
    let readme = std::fs::read_to_string(root().join("infra/README.md")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(root().join("infra/local/events"))
        .unwrap()
        .map(|e| {
            format!(
                "infra/local/events/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    files.push("infra/local/env.json".into());
    for f in &files {
        assert!(
            readme.contains(f.as_str()),
            "infra/README.md does not mention {f}"
        );
    }
    for named in readme
        .split(|c: char| c.is_whitespace() || c == '`')
        .filter(|w| w.starts_with("infra/local/"))
    {
        assert!(
            root()
                .join(named.trim_end_matches([',', '.', ')']))
                .exists(),
            "infra/README.md names {named}, which does not exist"
        );
    }
}
