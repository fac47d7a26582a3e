#!/bin/sh
# codequal-installer, offline form: runs the installer from the wheelhouse beside this script.
#
# Needs only python3 (3.10 or newer) on the host: no pip, no venv, no network. The first run
# installs the wheels into .installer/ beside this script (or $CODEQUAL_INSTALLER_HOME) with
# the pip wheel that the wheelhouse carries; later runs start at once.
#
# It comes out of a bundle with standard tools (no zstd): the bundle starts with a plain tar
# of this script and the wheelhouse, at byte 8. The wheelhouse holds the zstandard wheel as
# it is and every other wheel in wheels.tar.zst, which this script opens with python3 and
# that wheel:
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
# The wheelhouse's file names and sizes identify what is installed; install again when they
# change.
wanted=$("$python" -c 'import hashlib, os, sys
found = sorted((n, os.path.getsize(os.path.join(sys.argv[1], n))) for n in os.listdir(sys.argv[1]))
print(hashlib.sha256(repr(found).encode()).hexdigest())' "$wheelhouse")
if [ "$(cat "$target/.installed-from" 2>/dev/null || true)" != "$wanted" ]; then
	wheels="$target.wheels"
	rm -rf "$target.new" "$wheels"
	mkdir -p "$wheels"
	# Every wheel into $wheels: the zstandard wheel for this python3 is unzipped into a
	# scratch directory and imported from there to unpack wheels.tar.zst.
	if ! unpacked=$("$python" - "$wheelhouse" "$wheels" 2>&1 <<'UNPACK'
import os, shutil, sys, tarfile, tempfile, zipfile

source, into = sys.argv[1:3]
tag = "-cp%d%d-" % sys.version_info[:2]
names = sorted(os.listdir(source))
for name in names:
    if name.endswith(".whl"):
        shutil.copyfile(os.path.join(source, name), os.path.join(into, name))
pack = os.path.join(source, "wheels.tar.zst")
if os.path.exists(pack):
    zstd_wheels = [n for n in names if n.startswith("zstandard-") and tag in n]
    if not zstd_wheels:
        sys.exit("no zstandard wheel for this Python (%s)" % tag.strip("-"))
    try:
        with tempfile.TemporaryDirectory() as scratch:
            with zipfile.ZipFile(os.path.join(source, zstd_wheels[0])) as wheel:
                wheel.extractall(scratch)
            sys.path.insert(0, scratch)
            import zstandard

            with open(pack, "rb") as packed:
                stream = zstandard.ZstdDecompressor().stream_reader(packed)
                with tarfile.open(fileobj=stream, mode="r|") as tar:
                    for member in tar:
                        name = member.name
                        if not member.isfile() or "/" in name or not name.endswith(".whl"):
                            sys.exit("%s holds %r, which is not a wheel" % (pack, name))
                        with tar.extractfile(member) as data:
                            with open(os.path.join(into, name), "xb") as out:
                                shutil.copyfileobj(data, out)
    except Exception as e:  # one line for the operator, not a traceback
        sys.exit("%s cannot be unpacked: %s" % (pack, e))
UNPACK
	); then
		rm -rf "$wheels"
		fail "the wheelhouse does not unpack with $("$python" --version 2>&1): $unpacked" \
			"the bundle was made for another Python version, or was damaged on the way: copy it again, or check it with \`bundle verify\` where the installer runs"
	fi
	pip_wheel=
	for wheel in "$wheels"/pip-*.whl; do
		[ -f "$wheel" ] && pip_wheel=$wheel
	done
	[ -n "$pip_wheel" ] || {
		rm -rf "$wheels"
		fail "the wheelhouse holds no pip wheel" "make the bundle again"
	}
	if ! "$python" "$pip_wheel/pip" install --quiet --disable-pip-version-check --root-user-action=ignore --no-index \
		--find-links "$wheels" --only-binary ':all:' --target "$target.new" codequal-installer; then
		rm -rf "$target.new" "$wheels"
		fail "the installer's wheels do not install with $("$python" --version 2>&1)" \
			"the bundle was made for another Python version or machine: see \`bundle inspect\`"
	fi
	rm -rf "$wheels"
	printf '%s\n' "$wanted" >"$target.new/.installed-from"
	rm -rf "$target"
	mv "$target.new" "$target"
fi

PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
exec "$python" -m installer "$@"
