#!/usr/bin/env bats
# The Debian package (issue 11): `cpack -G DEB` makes workq_VERSION_ARCH.deb with the tools, man
# pages, completions, examples, copyright and changelog under /usr; it declares its runtime
# dependencies (computed by dpkg-shlibdeps from the binaries) and recommends redis-server;
# lintian finds no errors; apt can install it here.
#
# Which package: WORKQ_DEB when set (scripts/package sets it to the Release package it built),
# else one packaged here from the test build in WORKQ_BIN, in about 15 s. That one holds the
# test build's binaries, so its Depends also lists libasan8 and libubsan1; everything else is
# the same as the Release package's, which scripts/package checks with this very file.

load helpers

setup_file() {
    if [ -n "${WORKQ_DEB:-}" ]; then
        export DEB=$WORKQ_DEB
    else
        cpack -G DEB -B "$BATS_FILE_TMPDIR/package" --config "$WORKQ_BIN/CPackConfig.cmake" \
            >"$BATS_FILE_TMPDIR/cpack.log" 2>&1
        DEB=$(ls "$BATS_FILE_TMPDIR"/package/workq_*.deb)
        export DEB
    fi
    export SANITIZED=0
    if [ -z "${WORKQ_DEB:-}" ] && grep -qE '^WORKQ_SANITIZE:BOOL=(ON|1|TRUE)$' "$WORKQ_BIN/CMakeCache.txt"; then
        SANITIZED=1
    fi
}

# field NAME: a field of the package's control file.
field() { dpkg-deb -f "$DEB" "$1"; }

@test "the package is named workq_VERSION_ARCH.deb and describes itself" {
    [[ $(basename "$DEB") =~ ^workq_[0-9]+\.[0-9]+\.[0-9]+_amd64\.deb$ ]]
    run dpkg-deb -I "$DEB"
    assert_success
    [ "$(field Package)" = workq ]
    [ "$(field Architecture)" = amd64 ]
    [ "$(field Section)" = utils ]
    [ -n "$(field Maintainer)" ]
    [[ "$(field Homepage)" == https://* ]] || fail "Homepage: $(field Homepage)"
    field Description | grep -q 'job queues on Redis'
}

@test "it declares its runtime dependencies and recommends redis-server and the CA store" {
    depends=$(field Depends)
    for library in libhiredis0.14 libssl3 libfmt9 libboost-json1.81.0 libtomlplusplus3 libdate-tz3 tzdata \
        libc6 libstdc++6; do
        [[ $depends == *"$library"* ]] || fail "Depends lacks $library: $depends"
    done
    [ "$(field Recommends)" = "redis-server, ca-certificates" ]
    if [ "$SANITIZED" = 0 ]; then
        [[ $depends != *libasan* ]] || fail "a Release package must not depend on libasan: $depends"
    fi
}

@test "dpkg-deb -c: the tools, man pages, completions, examples and docs, all under /usr, owned by root" {
    run dpkg-deb -c "$DEB"
    assert_success
    listing=$output
    for path in bin/workq bin/workq-enqueue bin/workq-work bin/workq-queue bin/workq-dlq \
        bin/workq-status bin/workq-schedule share/man/man1/workq-schedule.1.gz \
        share/bash-completion/completions/workq-schedule \
        share/fish/vendor_completions.d/workq-schedule.fish \
        share/man/man1/workq-enqueue.1.gz share/man/man1/workq-work.1.gz \
        share/man/man1/workq-queue.1.gz share/man/man1/workq-dlq.1.gz \
        share/man/man1/workq-status.1.gz share/man/man5/workq-config.5.gz \
        share/man/man7/workq.7.gz \
        share/bash-completion/completions/workq share/bash-completion/completions/workq-work \
        share/zsh/vendor-completions/_workq share/fish/vendor_completions.d/workq.fish \
        share/doc/workq/copyright share/doc/workq/changelog.gz \
        share/doc/workq/examples/systemd/workq-work@.service \
        share/doc/workq/examples/cron/crontab share/doc/workq/examples/kubernetes/deployment.yaml \
        share/doc/workq/examples/pipeline.sh share/doc/workq/README.md \
        lib/systemd/system/workq-work@.service lib/sysusers.d/workq.conf; do
        grep -qE " \./usr/$path\$" <<<"$listing" || fail "the package lacks /usr/$path"
    done
    # Nothing outside /usr, nothing from the build machine, every file root's.
    ! grep -vE ' \./(usr/.*)?$' <<<"$listing"
    ! grep -vE '^[-dl]rw[-x]r-[-x]r-[-x] root/root ' <<<"$listing"
}

@test "lintian reports no errors" {
    run lintian --fail-on error "$DEB"
    echo "$output"
    assert_success
    refute_line --regexp '^E: '
}

@test "apt can install it: every dependency resolves (apt-get --simulate install ./workq_*.deb)" {
    run apt-get --simulate install "$DEB"
    assert_success
    assert_line --regexp '^Inst workq '
}

@test "the packaged binaries run: workq --version, workq-enqueue --help" {
    root="$BATS_TEST_TMPDIR/root"
    dpkg-deb -x "$DEB" "$root"
    run "$root/usr/bin/workq" --version
    assert_success
    assert_output --regexp '^workq [0-9]+\.[0-9]+\.[0-9]+$'
    run "$root/usr/bin/workq" enqueue --help
    assert_success
    assert_line --partial "Usage: workq-enqueue"
}

@test "the systemd unit ships disabled, with the workq user it runs as (sysusers.d) made by postinst" {
    root="$BATS_TEST_TMPDIR/root"
    dpkg-deb -x "$DEB" "$root"
    dpkg-deb -e "$DEB" "$root/DEBIAN"
    unit="$root/usr/lib/systemd/system/workq-work@.service"
    grep -qx 'User=workq' "$unit"
    grep -qx 'Type=notify' "$unit"
    # A bare name, found where cmake --install or the package put the binary.
    grep -qE '^ExecStart=workq-work ' "$unit"
    cmp "$unit" "$root/usr/share/doc/workq/examples/systemd/workq-work@.service"
    grep -qE '^u workq - ' "$root/usr/lib/sysusers.d/workq.conf"
    grep -q 'systemd-sysusers workq.conf' "$root/DEBIAN/postinst"
    ! grep -qE 'systemctl.*(enable|start)' "$root/DEBIAN/postinst" || fail "postinst enables or starts a unit"
    # Nothing in the package is enabled: no symlink into a .wants directory.
    ! dpkg-deb -c "$DEB" | grep -q '\.wants/'
    # The README that messages point to is there.
    grep -q '^# workq' "$root/usr/share/doc/workq/README.md"
}
