//! The pricing proxy's own tests (Python unittest: the capacity rules against the worked
//! examples of DynamoDB's developer guide, and a live run through moto), run with the suite
//! so the benchmark's accounting cannot rot unnoticed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::process::Command;

#[test]
fn pricing_proxy_rules_hold() {
    testkit::setup::require_python_modules(
        &["moto.server", "flask_cors", "boto3"],
        "moto[server]==5.*",
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("python3")
        .args(["-m", "unittest", "bench/aws_cost/test_pricing.py"])
        .current_dir(&root)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pricing proxy tests failed:\n{stderr}"
    );
    assert!(stderr.contains("OK"), "{stderr}");
}
