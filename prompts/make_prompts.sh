#!/usr/bin/env bash
# Regenerate Tollgate's announcements from texts.tsv as 8 kHz, 16-bit, mono WAV.
#
# Needs (installs nothing itself): espeak-ng and sox, e.g. on Debian:
#   apt-get install espeak-ng sox
# Usage: prompts/make_prompts.sh [OUTPUT_DIR]   (default: the folder of this script)
# The WAVs are committed, so nobody needs these tools to run Tollgate.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "make_prompts.sh: $tool is not installed" >&2; exit 1; }
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
count=0
while IFS=$'\t' read -r id lang text; do
  [[ -z "$id" || "$id" == \#* ]] && continue
  mkdir -p "$out/$lang"
  espeak-ng -v "$lang" -s 150 -w "$tmp/raw.wav" "$text"
  # 8 kHz mono 16-bit signed PCM, what FreeSWITCH plays without transcoding on G.711
  # legs; a little silence on each side so the first syllable is not clipped.
  sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out/$lang/$id.wav" pad 0.15 0.2 norm -3
  count=$((count + 1))
done < "$here/texts.tsv"
echo "made $count prompts under $out"
