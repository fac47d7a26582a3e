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
# Without such a python3 but with a working docker, it runs the installer image instead
# (codequal/installer:<version>, loaded once from the bundle; see "the installer image"
# below); outside a bundle, the image named by $CODEQUAL_INSTALLER_IMAGE.
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

# --- the installer image: hosts without Python 3.10 but with a working docker ---------------
#
# The image (codequal/installer:<version>) is in the bundle's images/ with the release's
# images. It is loaded once: installer-image/unpack.tar is a root file system with zstd,
# imported and run with no network to decompress the bundle (Engines before 23 cannot read
# zstd); tar takes out the image's members, sha256sum checks them against SHA256SUMS, and
# docker load reads them. The container then gets what a host install needs and no more.

image_reference() {
	if [ -f "$here/installer-image/reference" ]; then
		sed -n 1p "$here/installer-image/reference"
	else
		printf '%s\n' "${CODEQUAL_INSTALLER_IMAGE:-codequal/installer:latest}"
	fi
}

docker_ready() {
	command -v docker >/dev/null 2>&1 && docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# $1 as an absolute path without . or .. (its directory must exist).
absolute() {
	if [ -d "$1" ]; then
		(CDPATH='' cd -- "$1" && pwd)
	else
		directory=$(CDPATH='' cd -- "$(dirname -- "$1")" && pwd) || return 1
		case $directory in
		/) printf '/%s\n' "$(basename -- "$1")" ;;
		*) printf '%s/%s\n' "$directory" "$(basename -- "$1")" ;;
		esac
	fi
}

# A value of the answer file $1: a top-level key $2, or key $3 inside section $2 (block or
# flow style; a top-level key in JSON too), without quotes and comments. Enough for paths;
# the installer validates.
answers_value() {
	if [ -z "${3:-}" ]; then
		# YAML, or JSON (which is YAML too): "key": "value",
		sed -n "s/^[[:space:]]*[\"']\{0,1\}$2[\"']\{0,1\}:[[:space:]]*//p" "$1" | sed 's/,$//'
	else
		sed -n -e "/^$2:[[:space:]]*\$/,/^[^[:space:]#]/s/^[[:space:]][[:space:]]*$3:[[:space:]]*//p" \
			-e "s/^$2:[[:space:]]*{.*$3:[[:space:]]*\([^,}]*\).*/\1/p" "$1"
	fi | sed -e 's/[[:space:]]#.*//' -e 's/[[:space:]]*$//' -e "s/^[\"']//" -e "s/[\"']\$//" | sed -n 1p
}

is_bundle() {
	[ -f "$1" ] && [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 502a4d18 ]
}

# The bundle the image is loaded from: $CODEQUAL_BUNDLE, a bundle named on the command line,
# the answer file's airgap.bundle, or the one bundle beside this script's directory.
find_bundle() {
	if [ -n "${CODEQUAL_BUNDLE:-}" ]; then
		printf '%s\n' "$CODEQUAL_BUNDLE"
		return
	fi
	for arg in "$@"; do
		if is_bundle "${arg#--bundle=}"; then
			absolute "${arg#--bundle=}"
			return
		fi
	done
	if [ -n "$answers" ] && bundle=$(answers_value "$answers" airgap bundle) && is_bundle "$bundle"; then
		printf '%s\n' "$bundle"
		return
	fi
	found=
	for candidate in "$here"/../*.bundle; do
		if is_bundle "$candidate"; then
			[ -z "$found" ] || return 1
			found=$candidate
		fi
	done
	[ -n "$found" ] && absolute "$found"
}

load_image() {
	bundle=$(find_bundle "$@") ||
		fail "the installer image $image is not loaded, and no bundle to load it from was found" \
			"name the bundle: CODEQUAL_BUNDLE=/path/to/codequal-<version>.bundle $0 ..."
	[ -f "$here/installer-image/unpack.tar" ] ||
		fail "the installer image $image is not loaded, and $here has no installer-image/unpack.tar" \
			"extract the launcher from a bundle made without --no-installer-image: tail -c +9 BUNDLE | tar x"
	say "loading the installer image $image from $bundle (once)"
	unpacker="codequal/installer-unpack:$$"
	scratch=$(mktemp -d "${TMPDIR:-/tmp}/codequal-installer-image.XXXXXX")
	trap 'rm -rf "$scratch"; docker rmi -f "$unpacker" >/dev/null 2>&1 || true' EXIT
	trap 'exit 130' INT TERM
	docker import --message "codequal-installer unpacker" "$here/installer-image/unpack.tar" "$unpacker" >/dev/null ||
		fail "docker import of the unpacker failed" "check that the Docker Engine has free disk space"
	# No network, no log (json-file would keep a copy of everything it prints).
	unzstd() { # MEMBER...: extract them from the bundle into $scratch
		rm -f "$scratch/failed"
		untar=0
		{ docker run --rm -i --network none --log-driver none "$unpacker" /usr/bin/zstd -dcq <"$bundle" ||
			: >"$scratch/failed"; } | tar -x -C "$scratch" "$@" 2>"$scratch/tar.log" || untar=$?
		[ ! -e "$scratch/failed" ] ||
			fail "zstd cannot decompress $bundle" "the bundle is damaged: copy it again, or check it with \`bundle verify\`"
		[ "$untar" = 0 ] ||
			fail "cannot read the installer image from $bundle: $(tail -n 2 "$scratch/tar.log" | tr '\n' ' ')" \
				"the bundle is damaged or not a CodeQual bundle: check it with \`bundle verify\`"
	}
	unzstd images/manifest.json SHA256SUMS
	[ -f "$scratch/images/manifest.json" ] ||
		fail "$bundle holds no images/manifest.json" "make the bundle again"
	# The manifest's entry of this image (Docker starts every entry with its Config).
	entry=$(tr -d '\n' <"$scratch/images/manifest.json" | sed -e 's/^\[//' -e 's/\]$//' \
		-e 's/},{"Config"/}\
{"Config"/g' | grep -F "\"$image\"" | sed -n 1p)
	[ -n "$entry" ] ||
		fail "$bundle does not hold the installer image $image" \
			"make the bundle again without --no-installer-image (every bundle carries $image), or install python3 3.10 or newer"
	config=$(printf '%s\n' "$entry" | sed -n 's/.*"Config":"\([^"]*\)".*/\1/p')
	layers=$(printf '%s\n' "$entry" | sed -n 's/.*"Layers":\[\([^]]*\)\].*/\1/p' | tr ',' '\n' | tr -d '"')
	wanted=
	for path in $config $layers; do
		case /$path/ in
		*/../* | //*) fail "$bundle names an unsafe image path: $path" "the bundle was changed" ;;
		esac
		wanted="$wanted images/$path"
	done
	# shellcheck disable=SC2086 # the paths are checked above and hold no spaces
	unzstd $wanted
	# A layer stored once for two images is a link to the other copy: take those too.
	links=
	for path in $wanted; do
		if [ -L "$scratch/$path" ]; then
			target=$(readlink "$scratch/$path")
			case /$target/ in
			*/../../* | //*) fail "$bundle has a link leaving images/: $path" "the bundle was changed" ;;
			esac
			links="$links images/$(dirname "${path#images/}")/$target"
		fi
	done
	if [ -n "$links" ]; then
		# shellcheck disable=SC2086
		unzstd $links
	fi
	# Every file read against SHA256SUMS (the signature is checked by the installer itself).
	(
		cd "$scratch"
		for path in images/manifest.json $wanted $links; do
			[ -L "$path" ] || grep "  $(printf '%s' "$path" | sed 's/\./\\./g')\$" SHA256SUMS || echo "missing  $path"
		done | sha256sum -c --quiet --strict - >"$scratch/sums.log" 2>&1
	) || fail "the installer image's files in $bundle do not match its checksums: $(head -n 3 "$scratch/sums.log" | tr '\n' ' ')" \
		"the bundle is damaged: copy it again"
	printf '[%s]\n' "$entry" >"$scratch/images/manifest.json"
	# shellcheck disable=SC2046,SC2086
	(cd "$scratch/images" && tar -ch manifest.json $(printf '%s\n' $wanted | sed 's|^images/||')) |
		docker load >"$scratch/load.log" 2>&1 ||
		fail "docker load of the installer image failed: $(tail -n 3 "$scratch/load.log" | tr '\n' ' ')" \
			"check the Docker Engine's free disk space and log"
	docker image inspect "$image" >/dev/null 2>&1 ||
		fail "docker load did not give $image" "make the bundle again"
	rm -rf "$scratch"
	docker rmi -f "$unpacker" >/dev/null 2>&1 || true
	trap - EXIT INT TERM
}

# Run the installer in its image with the host's view: the Engine's socket, the working
# directory, the paths named on the command line and in the answer file (the install
# directory and the bundle among them) at the same absolute paths (the Compose files it
# writes name host paths), the host's network and process namespaces (ports and their
# holders, with the capability to read which process holds a socket), the host's /etc/os-release read-only at /host/etc/os-release, the kubeconfig when
# one is set. A terminal only when stdin is one. Exit codes pass through (docker run exits
# with the installer's).
run_image() {
	image=$(image_reference)
	answers=
	previous=
	for arg in "$@"; do
		case $previous in --answers) answers=$arg ;; esac
		case $arg in --answers=*) answers=${arg#--answers=} ;; esac
		previous=$arg
	done
	if ! docker image inspect "$image" >/dev/null 2>&1; then
		if [ -f "$here/installer-image/reference" ]; then
			load_image "$@"
		else
			say "the installer image $image is pulled by the Docker Engine (online)"
		fi
	fi

	mounts=
	bind() { # PATH [ro]: bind PATH at the same path, once, unless a directory bound before holds it
		old_ifs=$IFS
		IFS='
'
		for line in $mounts; do
			case $1/ in "${line%:*}"/*)
				IFS=$old_ifs
				return
				;;
			esac
		done
		IFS=$old_ifs
		mounts="$mounts
$1:${2:-rw}"
	}
	socket=/var/run/docker.sock
	case ${DOCKER_HOST:-} in
	unix://*) socket=${DOCKER_HOST#unix://} ;;
	?*) fail "DOCKER_HOST=$DOCKER_HOST: the installer image reaches the Engine through its unix socket only" \
		"run it on the Engine's host, or install python3 3.10 or newer" ;;
	esac
	bind "$socket"
	[ "$PWD" = / ] || bind "$PWD"
	for arg in "$@"; do
		path=${arg#--*=}
		case $path in -*) continue ;; esac
		[ -e "$path" ] || continue
		path=$(absolute "$path")
		# A file's directory: the installer saves files by renaming a new copy over them.
		[ -d "$path" ] || path=$(dirname -- "$path")
		[ "$path" = / ] || bind "$path"
	done
	if [ -n "$answers" ] && [ -f "$answers" ]; then
		install_dir=$(answers_value "$answers" install_dir)
		if [ -n "$install_dir" ]; then
			mkdir -p "$install_dir" && bind "$install_dir"
		fi
		# Every existing absolute path the answers name: the bundle, certificates, CA files.
		# shellcheck disable=SC2013 # paths with spaces are not mounted; the installer says so
		for path in $(grep -o '[[:space:]:"'"'"'{,]/[^[:space:],}"'"'"'#]*' "$answers" | sed 's/^.//'); do
			[ -e "$path" ] && [ "$path" != / ] && bind "$path" ro
		done
	elif [ $# -eq 0 ] || [ "$1" = --wizard ]; then
		default_dir=${CODEQUAL_INSTALL_DIR:-/opt/codequal}
		mkdir -p "$default_dir" && bind "$default_dir"
	fi
	# CODEQUAL_* variables pass through by name; those naming an existing absolute path
	# (CODEQUAL_RELEASES_DIR, CODEQUAL_BUNDLE) are mounted read-only there.
	for name in $(env | sed -n 's/^\(CODEQUAL_[A-Z0-9_]*\)=.*/\1/p'); do
		value=$(printenv "$name")
		case $value in
		/?*) [ ! -e "$value" ] || bind "$value" ro ;;
		esac
	done
	kubeconfig=${KUBECONFIG:-}
	[ -n "$kubeconfig" ] || [ ! -f "$HOME/.kube/config" ] || kubeconfig=$HOME/.kube/config
	if [ -n "$kubeconfig" ]; then
		old_ifs=$IFS
		IFS=:
		for path in $kubeconfig; do
			[ -f "$path" ] && bind "$(absolute "$path")" ro
		done
		IFS=$old_ifs
	fi

	set -- "$image" "$@"
	old_ifs=$IFS
	IFS='
'
	for line in $mounts; do
		[ -n "$line" ] || continue
		set -- --volume "${line%:*}:$line" "$@"
	done
	IFS=$old_ifs
	for name in $(env | sed -n 's/^\(CODEQUAL_[A-Z0-9_]*\)=.*/\1/p'); do
		set -- --env "$name" "$@"
	done
	[ -z "$kubeconfig" ] || set -- --env "KUBECONFIG=$kubeconfig" "$@"
	[ -z "${TERM:-}" ] || set -- --env TERM "$@"
	[ ! -t 0 ] || set -- --interactive --tty "$@"
	[ ! -r /etc/os-release ] || set -- --volume /etc/os-release:/host/etc/os-release:ro "$@"
	# SYS_PTRACE: reading another process's /proc/PID/fd (whose socket holds a port) needs
	# it when that process has capabilities the container lacks. The Engine's socket gives
	# the container as much power already.
	exec docker run --rm --network host --pid host --cap-add SYS_PTRACE --log-driver none --workdir "$PWD" \
		--env "DOCKER_HOST=unix://$socket" "$@"
}

if python=$(find_python); then
	version="$("$python" -I -c 'import platform; print("Python", platform.python_version())') at $python"
	say "path: wheelhouse ($version)"
	run_wheelhouse "$@"
fi
if docker_ready; then
	say "path: installer image ($(image_reference))"
	run_image "$@"
fi
if command -v "${PYTHON:-python3}" >/dev/null 2>&1; then
	fail "$("${PYTHON:-python3}" --version 2>&1) is too old" "the installer needs Python 3.10 or newer, or a working docker to run the installer image"
fi
fail "${PYTHON:-python3} is not installed, and docker does not answer" \
	"install python3 (3.10 or newer) from the operating system's packages, or start Docker to run the installer image"
