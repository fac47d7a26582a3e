#!/bin/sh
# codequal-installer, offline form: runs the installer from the wheelhouse beside this script.
#
# Needs only python3 (3.10 or newer) on the host: no pip, no network. The first run makes
# .installer/ beside this script (or $CODEQUAL_INSTALLER_HOME) a virtual environment of that
# python3 without pip and without the host's packages, and installs the wheels into it with
# the pip wheel that the wheelhouse carries (--no-index); later runs start at once. The
# installer then runs in isolated mode (python3 -I): the host's site-packages, user site and
# PYTHON* variables never reach it.
#
# It comes out of a bundle with standard tools (no zstd): the bundle starts with a plain tar
# of this script and the wheelhouse, at byte 8. The wheelhouse holds the zstandard wheel as
# it is and every other wheel in wheels.tar.zst, which this script opens with python3 and
# that wheel:
#
#   tail -c +9 ../codequal-0.1.0.bundle | tar x
#   ./codequal-installer bundle verify ../codequal-0.1.0.bundle --key codequal.pub
#   ./codequal-installer apply --answers answers.yaml --bundle ../codequal-0.1.0.bundle
#
# Every run says on stderr which way it runs the installer, in one line starting with
# "codequal-installer: path: ".
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
wheelhouse="$here/wheelhouse"

say() {
	printf 'codequal-installer: %s\n' "$1" >&2
}

fail() {
	say "$1"
	[ -n "${2:-}" ] && printf 'hint: %s\n' "$2" >&2
	exit 3
}

# The host's python3 when it is Python 3.10 or newer ($PYTHON to name another): its path.
find_python() {
	found=$(command -v "${PYTHON:-python3}" 2>/dev/null) || return 1
	"$found" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || return 1
	printf '%s\n' "$found"
}

# The wheelhouse path: the installer in .installer/, a virtual environment of $python.
run_wheelhouse() {
	[ -d "$wheelhouse" ] ||
		fail "no wheelhouse at $wheelhouse" "run this script from an extracted bundle"
	target=${CODEQUAL_INSTALLER_HOME:-"$here/.installer"}
	# The wheelhouse's file names and sizes, and the interpreter, identify what is
	# installed; install again when they change.
	wanted=$("$python" -I -c 'import hashlib, os, sys
found = sorted((n, os.path.getsize(os.path.join(sys.argv[1], n))) for n in os.listdir(sys.argv[1]))
found.append((os.path.realpath(sys.executable), sys.version))
print(hashlib.sha256(repr(found).encode()).hexdigest())' "$wheelhouse")
	if [ "$(cat "$target/.installed-from" 2>/dev/null || true)" != "$wanted" ]; then
		install_wheelhouse
		printf '%s\n' "$wanted" >"$target.new/.installed-from"
		rm -rf "$target"
		mv "$target.new" "$target"
		say "ready: the next runs start at once"
	fi
	exec "$target/bin/python" -I -m installer "$@"
}

install_wheelhouse() {
	say "first run: installing the installer for $version into $target"
	wheels="$target.wheels"
	rm -rf "$target.new" "$wheels"
	# A virtual environment of its own: pip and the installer see none of the host's
	# packages (no --system-site-packages), and it needs no ensurepip (--without-pip).
	if ! made=$("$python" -I -m venv --without-pip "$target.new" 2>&1); then
		rm -rf "$target.new"
		fail "$version cannot make a virtual environment in $target.new: $made" \
			"install the operating system's venv package for python3 (python3-venv on Debian and Ubuntu)"
	fi
	mkdir -p "$wheels"
	say "unpacking the wheelhouse"
	# Every wheel into $wheels: the zstandard wheel for this python3 is unzipped into a
	# scratch directory and imported from there to unpack wheels.tar.zst.
	if ! unpacked=$("$python" -I - "$wheelhouse" "$wheels" 2>&1 <<'UNPACK'
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
		rm -rf "$wheels" "$target.new"
		fail "the wheelhouse does not unpack with $version: $unpacked" \
			"the bundle was made for another Python version, or was damaged on the way: copy it again, or check it with \`bundle verify\` where the installer runs"
	fi
	pip_wheel=
	for wheel in "$wheels"/pip-*.whl; do
		[ -f "$wheel" ] && pip_wheel=$wheel
	done
	[ -n "$pip_wheel" ] || {
		rm -rf "$wheels" "$target.new"
		fail "the wheelhouse holds no pip wheel" "make the bundle again"
	}
	count=$(find "$wheels" -name '*.whl' ! -name 'pip-*' | wc -l)
	say "installing $((count)) wheels (no network)"
	# The environment's own python runs pip from its wheel: pip resolves against the
	# empty environment, not the host's packages.
	if ! "$target.new/bin/python" -I "$pip_wheel/pip" install --quiet --disable-pip-version-check \
		--no-warn-script-location --no-index --find-links "$wheels" --only-binary ':all:' \
		codequal-installer; then
		rm -rf "$target.new" "$wheels"
		fail "the installer's wheels do not install with $version" \
			"the bundle was made for another Python version or machine: see \`bundle inspect\`"
	fi
	rm -rf "$wheels"
	# pip's scripts and venv's activate name the scratch path: only python runs the installer.
	find "$target.new/bin" -type f ! -name 'python*' -exec rm -f {} +
}

if python=$(find_python); then
	version="$("$python" -I -c 'import platform; print("Python", platform.python_version())') at $python"
	say "path: wheelhouse ($version)"
	run_wheelhouse "$@"
fi
if command -v "${PYTHON:-python3}" >/dev/null 2>&1; then
	fail "$("${PYTHON:-python3}" --version 2>&1) is too old" "the installer needs Python 3.10 or newer"
fi
fail "${PYTHON:-python3} is not installed" "install python3 (3.10 or newer) from the operating system's packages"
