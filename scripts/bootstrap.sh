#!/usr/bin/env bash
# Installs the project's Python tools into .venv/ (git-ignored), one virtualenv per tool set
# because their pins clash: moto and the template checkers always, cargo-lambda with `lambda`. Re-running is cheap: a virtualenv is rebuilt only when its
# requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

venv() {
  local name=$1 requirements=$2 dir=.venv/$1
  if [ -x "$dir/bin/python" ] && cmp -s "$requirements" "$dir/.requirements"; then
    return
  fi
  echo "bootstrap: installing $requirements into $dir" >&2
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$dir/.requirements"
}

venv moto scripts/requirements-moto.txt
venv template scripts/requirements-template.txt
# cargo-lambda (with its zig) only for those who build packages: `bootstrap.sh lambda`.
if [[ " $* " == *" lambda "* ]]; then
  venv lambda scripts/requirements-lambda.txt
fi
