#!/usr/bin/env bash
# AdamW vs Lion vs QFT on SST-2 (issue 6): experiments/sst2-smollm2.sh qft.
exec "$(dirname "$0")/sst2-smollm2.sh" qft
