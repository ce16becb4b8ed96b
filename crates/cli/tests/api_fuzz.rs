//! The REST API fuzzed from its own OpenAPI document: schemathesis (installed by `make test`)
//! reads `/api/v1/full-spec` of the real `changewatch serve` and sends generated, mutated and
//! chained requests (`crates/cli/tests/clients/api_fuzz.py`). Zero 5xx, no schema-invalid
//! input accepted, only documented statuses, and the server alive and stopping cleanly after.
//!
//! The run happens in a fresh network namespace with only loopback (`unshare -n`): fuzzed
//! watches and test notifications point at arbitrary hosts, and nothing may leave the machine.
//!
//! Bounded: `CW_API_FUZZ_EXAMPLES` examples per operation (default 25, fixed seed, about a
//! minute); `make fuzz` runs more with a random seed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::run_client;

#[test]
fn rest_api_survives_schemathesis_from_its_own_spec() {
    testkit::setup::require_python_modules(&["schemathesis"], "schemathesis==4.*");
    testkit::setup::require_command("unshare", "util-linux");
    testkit::setup::require_command("ip", "iproute2");
    let examples = std::env::var("CW_API_FUZZ_EXAMPLES").unwrap_or_else(|_| "25".into());
    // A fixed seed keeps `make test` repeatable; `make fuzz` sets CW_API_FUZZ_SEED=random.
    let seed = std::env::var("CW_API_FUZZ_SEED").unwrap_or_else(|_| "20261205".into());
    let seed = if seed == "random" {
        String::new()
    } else {
        seed
    };
    let report = tempfile::NamedTempFile::new().unwrap();
    run_client(
        "unshare",
        &[
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec python3 crates/cli/tests/clients/api_fuzz.py",
        ],
        &[
            ("CW_BIN", env!("CARGO_BIN_EXE_changewatch")),
            ("CW_FUZZ_EXAMPLES", &examples),
            ("CW_FUZZ_SEED", &seed),
            ("CW_FUZZ_REPORT", report.path().to_str().unwrap()),
        ],
        Duration::from_secs(1200),
    );
    // The report proves the run happened: every operation was exercised, none failed.
    let junit = std::fs::read_to_string(report.path()).unwrap();
    let attr = |name: &str| -> u64 {
        junit
            .split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the JUnit report:\n{junit}"))
    };
    assert!(attr("tests") >= 20, "too few operations tested:\n{junit}");
    assert_eq!(attr("failures"), 0, "{junit}");
    assert_eq!(attr("errors"), 0, "{junit}");
}
