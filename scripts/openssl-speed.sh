#!/usr/bin/env bash
# Prints `openssl speed` figures for the algorithms cashdesk's micro-benchmarks
# measure (cargo bench -p cashdesk-crypto), in the units criterion reports, so
# the two can be set side by side (docs/benchmarks.md):
#
#   - RSA-2048 and SM2 sign/verify: operations per second and µs per operation;
#   - MD5, SHA-256, SM3, HMAC-SHA256, HMAC-SM3: MiB/s at 200 B, 1 KiB, 16 KiB;
#   - AES-256-GCM and ChaCha20-Poly1305 (the ciphers behind v3 notification
#     resources and the secretbox): MiB/s at the same sizes.
#
# One process, one core, like the benchmarks. Usage:
#   scripts/openssl-speed.sh            # 1 s per algorithm and size
#   SPEED_SECONDS=3 scripts/openssl-speed.sh
# Takes about a minute at 1 s. Check `uptime` first: on a busy machine both
# openssl and the benchmarks read low.
set -euo pipefail

secs="${SPEED_SECONDS:-1}"
if ! command -v openssl >/dev/null 2>&1; then
    echo "openssl is not installed (apt-get install openssl)" >&2
    exit 1
fi

echo "# $(openssl version)"
echo "# $(uname -m), $(nproc) CPUs, load average:$(uptime | sed 's/.*load average://')"
echo "# ${secs} s per algorithm and size"
echo

# `openssl speed` prints results on stdout after a lot of progress on stderr;
# keep the line that starts with the algorithm's name.
speed() {
    openssl speed -seconds "$secs" "$@" 2>/dev/null
}

# kB/s (openssl's unit: 1000s of bytes per second) -> MiB/s (criterion's).
to_mib() {
    awk -v v="${1%k}" 'BEGIN { printf "%.1f", v * 1000 / 1048576 }'
}

pk() {
    local label="$1" pattern="$2"
    shift 2
    local line
    line="$(speed "$@" | grep -E "$pattern" | tail -1)"
    if [[ -z "$line" ]]; then
        printf '%-22s  (not available in this openssl)\n' "$label"
        return
    fi
    # ... sign verify sign/s verify/s: the last two fields.
    awk -v label="$label" '{
        s = $(NF - 1); v = $NF
        printf "%-22s  sign %9.1f/s (%8.2f µs)   verify %9.1f/s (%8.2f µs)\n",
            label, s, 1e6 / s, v, 1e6 / v
    }' <<<"$line"
}

# One digest/MAC/cipher: the default sizes give the 1 KiB and 16 KiB
# columns, a second run with -bytes 200 the string-to-sign size.
sym() {
    local label="$1" name="$2"
    shift 2
    local line small
    line="$(speed "$@" | grep -E "^${name}[[:space:]]" | tail -1 || true)"
    small="$(speed -bytes 200 "$@" | grep -E "^${name}[[:space:]]" | tail -1 || true)"
    if [[ -z "$line" ]]; then
        printf '%-22s  (not available in this openssl)\n' "$label"
        return
    fi
    # Columns: name 16 64 256 1024 8192 16384 (the name may contain spaces,
    # so count from the end).
    local k1 k16 k200="-"
    k1="$(awk '{ print $(NF - 2) }' <<<"$line")"
    k16="$(awk '{ print $NF }' <<<"$line")"
    [[ -n "$small" ]] && k200="$(to_mib "$(awk '{ print $NF }' <<<"$small")")"
    printf '%-22s  200 B %8s MiB/s   1 KiB %8s MiB/s   16 KiB %8s MiB/s\n' \
        "$label" "$k200" "$(to_mib "$k1")" "$(to_mib "$k16")"
}

echo "## public key (openssl signs a 36-byte digest; cashdesk hashes 200 bytes first)"
pk "rsa2048" "^rsa 2048 bits" rsa2048
pk "sm2" "SM2" sm2
echo
echo "## digests and MACs"
sym "md5" "md5" -evp md5
sym "sha256" "sha256" -evp sha256
sym "sm3" "sm3" -evp sm3
sym "hmac-sha256" "hmac\\(sha256\\)" -hmac sha256
sym "hmac-sm3" "hmac\\(sm3\\)" -hmac sm3
echo
echo "## AEAD"
sym "aes-256-gcm" "(AES-256-GCM|aes-256-gcm)" -evp aes-256-gcm
sym "chacha20-poly1305" "(ChaCha20-Poly1305|chacha20-poly1305)" -evp chacha20-poly1305
