#!/bin/sh
# codequal-installer, offline form: runs the installer from the wheelhouse beside this script.
#
# Needs only python3 (3.10 or newer) on the host: no pip, no venv, no network. The first run
# installs the wheels into .installer/ beside this script (or $CODEQUAL_INSTALLER_HOME) with
# the pip wheel that the wheelhouse carries; later runs start at once.
#
# It comes out of a bundle with standard tools (no zstd): the bundle starts with a plain tar
# of this script and the wheelhouse, at byte 8:
#
#   tail -c +9 ../codequal-0.1.0.bundle | tar x
#   ./codequal-installer bundle verify ../codequal-0.1.0.bundle --key codequal.pub
#   ./codequal-installer apply --answers answers.yaml --bundle ../codequal-0.1.0.bundle
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
wheelhouse="$here/wheelhouse"
python=${PYTHON:-python3}

fail() {
	printf 'codequal-installer: %s\n' "$1" >&2
	[ -n "${2:-}" ] && printf 'hint: %s\n' "$2" >&2
	exit 3
}

command -v "$python" >/dev/null 2>&1 ||
	fail "$python is not installed" "install python3 (3.10 or newer) from the operating system's packages"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
	fail "$("$python" --version 2>&1) is too old" "the installer needs Python 3.10 or newer"
[ -d "$wheelhouse" ] ||
	fail "no wheelhouse at $wheelhouse" "run this script from an extracted bundle"

target=${CODEQUAL_INSTALLER_HOME:-"$here/.installer"}
# The wheel file names identify what is installed; install again when they change.
wanted=$("$python" -c 'import hashlib, os, sys
names = sorted(n for n in os.listdir(sys.argv[1]) if n.endswith(".whl"))
print(hashlib.sha256("\n".join(names).encode()).hexdigest())' "$wheelhouse")
if [ "$(cat "$target/.installed-from" 2>/dev/null || true)" != "$wanted" ]; then
	pip_wheel=
	for wheel in "$wheelhouse"/pip-*.whl; do
		[ -f "$wheel" ] && pip_wheel=$wheel
	done
	[ -n "$pip_wheel" ] || fail "the wheelhouse holds no pip wheel" "make the bundle again"
	rm -rf "$target.new"
	if ! "$python" "$pip_wheel/pip" install --quiet --disable-pip-version-check --no-index \
		--find-links "$wheelhouse" --only-binary ':all:' --target "$target.new" codequal-installer; then
		rm -rf "$target.new"
		fail "the installer's wheels do not install with $("$python" --version 2>&1)" \
			"the bundle was made for another Python version or machine: see \`bundle inspect\`"
	fi
	printf '%s\n' "$wanted" >"$target.new/.installed-from"
	rm -rf "$target"
	mv "$target.new" "$target"
fi

PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
exec "$python" -m installer "$@"
