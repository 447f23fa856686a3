#!/bin/bash
# conformance/runtime-validation.sh [RUNTIME [OUTDIR]]
#
# Run the OCI runtime-tools validation suite (validation/<test>/*.go, one
# TAP-producing program per test) against a runc-compatible runtime, offline
# once its inputs are cached. RUNTIME defaults to the project's venv ketch
# (.venv/bin/ketch next to this directory). Must run as root.
#
# Output: one line per test program, then
#   validation: P passed, F failed, S skipped (files: OK ok / N total)
# Exit status: 0 no failure, 1 some failure, 2 harness/build error.
# OUTDIR (default: a new mktemp -d) receives tap/<test>.tap (stdout),
# tap/<test>.err (stderr) and results.txt.
#
# How the suite is obtained and built (all cached under $OCI_CONF_CACHE):
#   - Debian packages: golang-go and the golang-*-dev packages of the suite's
#     imports (installed with apt-get when missing; RT_INSTALL_DEPS=0 to never).
#   - Sources: RT_SRC (a runtime-tools tree or a .tar.* of one), else the Debian
#     source package golang-github-opencontainers-runtime-tools fetched with
#     "apt-get source --download-only" through a private apt state (deb-src for
#     trixie, then bookworm; the system apt configuration is not touched). Any
#     golang-github-opencontainers-runtime-tools_*.orig.tar.* already under the
#     cache is reused.
#   - Build: GOPATH mode against /usr/share/gocode (Debian's Go libraries) plus
#     conformance/tap-go, our stand-in for github.com/mndrix/tap-go (not in
#     Debian); module mode with -mod=vendor instead when the tree is vendored.
#   - Root filesystem: a busybox-static tree (tarball rootfs-<arch>.tar.gz) made
#     from the host's /bin/busybox; RT_ROOTFS=FILE uses FILE, RT_ROOTFS=upstream
#     the tarball shipped in the sources.
#
# Each test program runs under "unshare --mount --propagation private" (mounts a
# runtime makes in the caller's namespace cannot reach the host; RT_UNSHARE=0 to
# disable) and conformance/subreaper.py (orphaned containers are reaped at once;
# RT_SUBREAPER=0 to disable), with TMPDIR inside OUTDIR. Containers a test leaves
# behind (bundle inside OUTDIR) are deleted, leaked mounts unmounted.
#
# Environment:
#   RT_TESTS="create state ..."   run only these tests (default: all)
#   RT_SKIP_TESTS="..."           do not run these
#   RT_TIMEOUT=60                 seconds per test program
#   OCI_CONF_CACHE=DIR            cache (default ${TMPDIR:-/tmp}/oci-conf/cache)
#   RT_KEEP=1                     keep the bundles in OUTDIR/tmp
#   GO=go, PYTHON=/usr/bin/python3
#   RT_SHARED_SCRIPT=PATH         delegate everything to another harness with the
#                                 same interface (e.g. /work/shared/tools/
#                                 runtime-validation.sh); off by default
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

die() { echo "runtime-validation: $*" >&2; exit 2; }
log() { echo "[runtime-validation] $*" >&2; }

case "${1:-}" in -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac

RUNTIME=${1:-$REPO/.venv/bin/ketch}
if [ -n "${RT_SHARED_SCRIPT:-}" ]; then
	log "delegating to $RT_SHARED_SCRIPT"
	exec "$RT_SHARED_SCRIPT" "$RUNTIME" ${2:+"$2"}
fi

RUNTIME_PATH=$(command -v "$RUNTIME" || true)
[ -n "$RUNTIME_PATH" ] && [ -x "$RUNTIME_PATH" ] || die "runtime '$RUNTIME' not found or not executable"
# Keep a venv console script's own path (its #! line names the venv's python);
# only make it absolute.
case "$RUNTIME_PATH" in /*) ;; *) RUNTIME_PATH=$(cd "$(dirname "$RUNTIME_PATH")" && pwd)/$(basename "$RUNTIME_PATH") ;; esac
[ "$(id -u)" = 0 ] || die "must run as root"

CACHE=${OCI_CONF_CACHE:-${TMPDIR:-/tmp}/oci-conf/cache}
TIMEOUT=${RT_TIMEOUT:-60}
GO=${GO:-go}
PYTHON=${PYTHON:-/usr/bin/python3}
OUTDIR=${2:-$(mktemp -d "${TMPDIR:-/tmp}/ketch-validation.XXXXXX")}
mkdir -p "$OUTDIR" "$CACHE" || die "cannot create $OUTDIR or $CACHE"
OUTDIR=$(cd "$OUTDIR" && pwd)

# The suite's imports (go list of validation/ and cmd/runtimetest) and the
# Debian packages that carry them under /usr/share/gocode.
DEB_PACKAGES=(
	golang-go
	golang-github-blang-semver-dev         # github.com/blang/semver/v4
	golang-github-google-uuid-dev          # github.com/google/uuid
	golang-github-hashicorp-go-multierror-dev
	golang-github-mrunalp-fileutils-dev
	golang-github-opencontainers-specs-dev # github.com/opencontainers/runtime-spec
	golang-github-opencontainers-selinux-dev
	golang-github-sirupsen-logrus-dev
	golang-github-stretchr-testify-dev
	golang-github-urfave-cli-dev
	golang-github-xeipuuv-gojsonschema-dev
	golang-gocapability-dev                # github.com/syndtr/gocapability
	golang-golang-x-sys-dev
	busybox-static util-linux tar xz-utils findutils
)
SRC_PACKAGE=golang-github-opencontainers-runtime-tools

install_packages() {
	[ "${RT_INSTALL_DEPS:-1}" = 1 ] || return 0
	local missing=() p
	for p in "${DEB_PACKAGES[@]}"; do
		[[ $p == \#* ]] && continue
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "apt-get install ${missing[*]}"
	{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" ||
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; }; } \
		>"$CACHE/ketch-apt-install.log" 2>&1 || die "apt-get install failed: see $CACHE/ketch-apt-install.log"
}

# --- sources -------------------------------------------------------------------

cached_orig() {
	find "$CACHE" -maxdepth 3 -type f -name "${SRC_PACKAGE}_*.orig.tar.*" 2>/dev/null | sort -V | tail -1
}

download_source() {
	local d=$CACHE/ketch-debsrc suite mirror
	mirror=${RT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
	mkdir -p "$d/lists/partial" "$d/archives/partial" "$d/dl"
	for suite in trixie bookworm; do
		echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$d/sources.list"
		local apt=(apt-get -q -o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
			-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d" -o "APT::Sandbox::User=root")
		log "apt-get source --download-only $SRC_PACKAGE ($suite)"
		"${apt[@]}" update >"$d/update-$suite.log" 2>&1 || continue
		# apt verifies what it downloads against the signed index; a missing
		# .dsc on a mirror is not fatal as long as the orig tarball arrived.
		(cd "$d/dl" && "${apt[@]}" source --download-only "$SRC_PACKAGE") >"$d/source-$suite.log" 2>&1
		[ -n "$(cached_orig)" ] && return 0
	done
	return 1
}

source_tree() {
	local src=${RT_SRC:-} x top
	if [ -z "$src" ]; then
		src=$(cached_orig)
		if [ -z "$src" ]; then
			download_source || die "could not download the Debian source of $SRC_PACKAGE (logs in $CACHE/ketch-debsrc); set RT_SRC"
			src=$(cached_orig)
		fi
	fi
	if [ -f "$src" ]; then
		x=$CACHE/ketch-src-$(sha256sum "$src" | cut -c1-12)
		if [ ! -d "$x/validation" ]; then
			rm -rf "$x" "$x.tmp" && mkdir -p "$x.tmp"
			tar -xf "$src" -C "$x.tmp" || die "cannot extract $src"
			if [ ! -d "$x.tmp/validation" ] && [ "$(ls -A "$x.tmp" | wc -l)" = 1 ]; then
				top=$(ls -A "$x.tmp")
				mv "$x.tmp/$top" "$x" && rmdir "$x.tmp"
			else
				mv "$x.tmp" "$x"
			fi
		fi
		src=$x
	fi
	[ -d "$src/validation" ] && [ -d "$src/cmd/runtimetest" ] ||
		die "$src is not a runtime-tools source tree (no validation/ or cmd/runtimetest/)"
	(cd "$src" && pwd)
}

# --- build ---------------------------------------------------------------------

go_build() { # go_build MODE GOPATH OUT PKG [extra go flags]
	local mode=$1 gp=$2 out=$3 pkg=$4
	shift 4
	if [ "$mode" = vendor ]; then
		env GO111MODULE=on GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local GOCACHE="$CACHE/ketch-gocache" \
			"$GO" build "$@" -o "$out" "$pkg"
	else
		env GO111MODULE=off GOPATH="$gp:/usr/share/gocode" GOFLAGS= GOPROXY=off GOCACHE="$CACHE/ketch-gocache" \
			"$GO" build "$@" -o "$out" "$pkg"
	fi
}

build_suite() {
	local src=$1 key bin gp mode dir name failed=0
	key=$( {
		echo "$src"
		"$GO" version
		sha256sum "$HERE/tap-go/tap.go"
		find "$src" -name '*.go' -printf '%P %s %T@\n' | sort
	} | sha256sum | cut -c1-12)
	bin=$CACHE/ketch-build-$key
	if [ -f "$bin/.complete" ]; then
		echo "$bin"
		return 0
	fi
	rm -rf "$bin" && mkdir -p "$bin"
	gp=$CACHE/ketch-gopath-$key
	mode=gopath
	if [ -f "$src/vendor/modules.txt" ] &&
		(cd "$src" && go_build vendor "" /dev/null ./validation/util >/dev/null 2>&1); then
		mode=vendor
	else
		rm -rf "$gp" && mkdir -p "$gp/src/github.com/opencontainers" "$gp/src/github.com/mndrix"
		ln -s "$src" "$gp/src/github.com/opencontainers/runtime-tools"
		if [ ! -d /usr/share/gocode/src/github.com/mndrix/tap-go ]; then
			mkdir -p "$gp/src/github.com/mndrix/tap-go"
			cp "$HERE/tap-go/tap.go" "$gp/src/github.com/mndrix/tap-go/"
		fi
	fi
	log "building the validation suite ($mode mode, $("$GO" version | awk '{print $3}')) into $bin"
	if [ "$mode" = vendor ]; then dir=$src; else dir=$gp/src/github.com/opencontainers/runtime-tools; fi
	(
		cd "$dir" || exit 1
		CGO_ENABLED=0 go_build "$mode" "$gp" "$bin/runtimetest" ./cmd/runtimetest -tags "netgo osusergo" ||
			exit 1
		for t in validation/*/; do
			name=$(basename "$t")
			[ "$name" = util ] && continue
			compgen -G "$t*.go" >/dev/null || continue
			go_build "$mode" "$gp" "$bin/$name.t" "./$t" || echo "BUILD FAILED: $name"
		done
	) >"$bin/build.log" 2>&1 || die "building runtimetest failed: see $bin/build.log"
	failed=$(grep -c '^BUILD FAILED' "$bin/build.log")
	[ "$failed" -gt 0 ] && log "$failed test programs failed to build (see $bin/build.log)"
	echo "$mode $src" >"$bin/.complete"
	echo "$bin"
}

# --- root filesystem -----------------------------------------------------------

rootfs_tarball() { # rootfs_tarball SRC
	case "${RT_ROOTFS:-}" in
	"") ;;
	upstream)
		[ -s "$1/rootfs-$ARCH.tar.gz" ] || die "no rootfs-$ARCH.tar.gz in $1"
		echo "$1/rootfs-$ARCH.tar.gz"
		return 0
		;;
	*)
		[ -s "$RT_ROOTFS" ] || die "RT_ROOTFS=$RT_ROOTFS not found"
		readlink -f "$RT_ROOTFS"
		return 0
		;;
	esac
	local bb=/bin/busybox out sum tmp r a
	[ -x "$bb" ] || die "$bb missing (apt-get install busybox-static)"
	sum=$(sha256sum "$bb" | cut -c1-12)
	out=$CACHE/ketch-rootfs-busybox-$sum-$ARCH-v2.tar.gz
	if [ ! -s "$out" ]; then
		tmp=$(mktemp -d "$CACHE/.rootfs.XXXXXX")
		r=$tmp/root
		mkdir -p "$r"/{bin,dev,etc,proc,sys,tmp,root,run,var/tmp}
		# tar applies the "./" entry's mode to the bundle directory: it must be
		# traversable by a user-namespace root mapped to an unprivileged host uid
		# (linux_ns_nopath, linux_uid_mappings)
		chmod 0755 "$r"
		chmod 1777 "$r/tmp" "$r/var/tmp"
		chmod 0700 "$r/root"
		install -m 0755 "$bb" "$r/bin/busybox"
		for a in $("$bb" --list); do
			[ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
		done
		printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
		printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
		tar --numeric-owner --owner=0 --group=0 -C "$r" -czf "$out.tmp" . && mv "$out.tmp" "$out"
		rm -rf "$tmp"
		[ -s "$out" ] || die "could not build the busybox root filesystem"
	fi
	echo "$out"
}

# --- running -------------------------------------------------------------------

runtime_ids() { "$RUNTIME_PATH" list -q 2>/dev/null | sort; }

delete_new_containers() { # delete_new_containers IDS_BEFORE_FILE
	local id bundle
	for id in $(comm -13 "$1" <(runtime_ids)); do
		bundle=$("$RUNTIME_PATH" state "$id" 2>/dev/null |
			"$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get("bundle",""))' 2>/dev/null)
		case $bundle in "$SCRATCH"/*) "$RUNTIME_PATH" delete --force "$id" >/dev/null 2>&1 ;; esac
	done
}

unmount_leaks() { # prints how many mounts under $SCRATCH were left and unmounted
	local n=0 m
	while read -r m; do
		[ -n "$m" ] || continue
		umount -R -l "$m" 2>/dev/null && n=$((n + 1))
	done < <(findmnt -rn -o TARGET | grep -F "$SCRATCH/" | awk '{ print length($0) " " $0 }' | sort -n | cut -d' ' -f2-)
	[ "$n" -gt 0 ] && echo "$n"
}

install_packages
SRC=$(source_tree) || exit 2
BIN=$(build_suite "$SRC") || exit 2
ARCH=$("$GO" env GOARCH 2>/dev/null || echo amd64)
ROOTFS=$(rootfs_tarball "$SRC") || exit 2

WORK=$OUTDIR/work
SCRATCH=$OUTDIR/tmp
mkdir -p "$WORK" "$SCRATCH" "$OUTDIR/tap"
# bundles live under $SCRATCH: user-namespace tests need the path traversable
chmod 0755 "$OUTDIR" "$SCRATCH"
cp -f "$BIN/runtimetest" "$WORK/runtimetest"
cp -f "$ROOTFS" "$WORK/rootfs-$ARCH.tar.gz"

WRAP=()
[ "${RT_UNSHARE:-1}" = 1 ] && WRAP+=(unshare --mount --propagation private)
[ "${RT_SUBREAPER:-1}" = 1 ] && WRAP+=("$PYTHON" "$HERE/subreaper.py")

declare -A only=() skip=()
for t in ${RT_TESTS:-}; do only[$t]=1; done
for t in ${RT_SKIP_TESTS:-}; do skip[$t]=1; done
if [ ${#only[@]} -gt 0 ]; then
	for t in "${!only[@]}"; do [ -x "$BIN/$t.t" ] || die "unknown or unbuilt test '$t' (see $BIN)"; done
fi

RES=$OUTDIR/results.txt
{
	echo "# runtime-tools validation: runtime=$RUNTIME_PATH ($("$RUNTIME_PATH" --version 2>/dev/null | head -1))"
	echo "# source=$SRC build=$(cat "$BIN/.complete") rootfs=$(basename "$ROOTFS") timeout=${TIMEOUT}s unshare=${RT_UNSHARE:-1} subreaper=${RT_SUBREAPER:-1} date=$(date -u +%FT%TZ)"
} | tee "$RES"

PASS=0 FAIL=0 SKIP=0 FILES_OK=0 FILES=0
for prog in "$BIN"/*.t; do
	name=$(basename "$prog" .t)
	[ ${#only[@]} -gt 0 ] && [ -z "${only[$name]:-}" ] && continue
	[ -n "${skip[$name]:-}" ] && continue
	FILES=$((FILES + 1))
	before=$(mktemp "$SCRATCH/.ids.XXXXXX")
	runtime_ids >"$before"
	t0=$(date +%s)
	(cd "$WORK" && TMPDIR=$SCRATCH RUNTIME=$RUNTIME_PATH timeout -k 10 "$TIMEOUT" "${WRAP[@]}" "$prog" \
		>"$OUTDIR/tap/$name.tap" 2>"$OUTDIR/tap/$name.err" </dev/null)
	rc=$?
	secs=$(($(date +%s) - t0))
	leaked=$(unmount_leaks)
	delete_new_containers "$before"
	rm -f "$before"
	# A program may print several TAP documents: plans add up. "1..0" with no
	# test point is a skip of the whole program.
	# Some programs report a failed check only as an "error" in a YAML block
	# with no test point at all: counted, and noted on the line.
	read -r p f s planned ran plans diagerr < <(awk '
		/^ok [0-9]+/     { ran++; if (toupper($0) ~ /# *SKIP/) s++; else p++; next }
		/^not ok [0-9]+/ { ran++; if (toupper($0) ~ /# *TODO/) s++; else f++; next }
		/^1\.\.[0-9]+/   { sub(/^1\.\./, ""); planned += $0; plans++ }
		/^ +"error": /   { de++ }
		END { printf "%d %d %d %d %d %d %d\n", p, f, s, planned, ran, plans, de }' "$OUTDIR/tap/$name.tap")
	notes=""
	[ -n "$leaked" ] && notes+=" leaked-mounts=$leaked"
	{ [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } && notes+=" TIMEOUT"
	[ "$rc" -ne 0 ] && notes+=" rc=$rc"
	[ "$plans" -eq 0 ] && notes+=" no-plan"
	[ "$plans" -gt 0 ] && [ "$planned" -ne "$ran" ] && notes+=" planned=$planned,ran=$ran"
	if [ "$f" -gt 0 ] || [ "$rc" -ne 0 ] || [ "$plans" -eq 0 ] || [ "$planned" -ne "$ran" ]; then
		status=FAIL
		# a crash, a timeout or a short plan without a failing point is one failure
		[ "$f" -eq 0 ] && f=1
	elif [ "$ran" -eq 0 ]; then
		status=SKIP
		s=1
		[ "$diagerr" -gt 0 ] && notes+=" no test points but an \"error\" diagnostic (see tap/$name.tap)"
		FILES_OK=$((FILES_OK + 1))
	else
		status=ok
		FILES_OK=$((FILES_OK + 1))
	fi
	PASS=$((PASS + p)) FAIL=$((FAIL + f)) SKIP=$((SKIP + s))
	printf '%-5s %-36s pass=%-4d fail=%-3d skip=%-3d %3ds%s\n' "$status" "$name" "$p" "$f" "$s" "$secs" "$notes" | tee -a "$RES"
done

unmount_leaks >/dev/null
[ "${RT_KEEP:-0}" = 1 ] || rm -rf --one-file-system "${SCRATCH:?}"/ocitest* 2>/dev/null
# runtime-tools' relative-cgroup tests use cgroupsPath testdir/cgrouptest/...
for d in /sys/fs/cgroup/*/testdir /sys/fs/cgroup/testdir; do
	[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
done

echo "validation: $PASS passed, $FAIL failed, $SKIP skipped (files: $FILES_OK ok / $FILES total)" | tee -a "$RES"
log "outputs in $OUTDIR"
[ "$FAIL" -eq 0 ]
