#!/usr/bin/env bash
# Lints infra/template.yaml with cfn-lint (installed from PyPI when missing).
# Run from anywhere: `bash infra/lint.sh`. Exits non-zero on any error or warning.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v cfn-lint >/dev/null 2>&1 && ! python3 -c 'import cfnlint' 2>/dev/null; then
  echo "installing cfn-lint"
  python3 -m pip install -q 'cfn-lint>=1,<2'
fi

# pip may put the console script in a directory that is not on PATH (~/.local/bin); the
# module works either way.
lint() {
  if command -v cfn-lint >/dev/null 2>&1; then
    cfn-lint "$@"
  else
    python3 -c 'import sys; from cfnlint.runner import main; sys.argv[0] = "cfn-lint"; sys.exit(main())' "$@"
  fi
}

# Exit codes: 0 clean, 2 errors, 4 warnings (bit flags). SAM templates are transformed
# by cfn-lint itself before the checks run.
lint --version
lint -- "$here/template.yaml"
echo "cfn-lint: infra/template.yaml clean"
