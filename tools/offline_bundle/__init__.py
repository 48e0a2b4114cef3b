"""Build an offline bundle of cifarhelpers for a machine with no package index (a GPU node).

A GPU node often has no internet but ships Python with torch. The bundle is one folder holding
every wheel the node lacks, the project's own wheel, the CIFAR-10 archive, the notebooks, the GPU
report script and ``run.sh``, which installs it all offline into a temporary folder and runs a job::

    make bundle                                     # = the line below, for our GPU node
    .venv/bin/python tools/bundle.py --target gpu-node        # -> dist/bundle-gpu-node/ (at most 60 MiB)
    .venv/bin/python tools/bundle.py                          # this machine's Python and platform -> dist/bundle-local/
    .venv/bin/python tools/bundle.py --python-version 3.12 --platform manylinux_2_28_x86_64 \\
        --has torch torchvision numpy --out dist/my-bundle    # any target: what it has is an input
    .venv/bin/python tools/bundle.py --target gpu-node --offline  # only wheels already in the cache

    # on the node, from any folder (its output: --out; at most 8 files come back from our node):
    bash dist/bundle-gpu-node/run.sh gpu-report --out "$OUT"
    bash dist/bundle-gpu-node/run.sh train --epochs 24
    bash dist/bundle-gpu-node/run.sh notebooks --profile full --output-dir "$OUT"
    bash dist/bundle-gpu-node/run.sh python -c 'import cifarhelpers'
    bash dist/bundle-gpu-node/run.sh check           # install, import and kernel check only (no data, no job)

``dist/`` is ignored by git: a runner that copies the working tree must be told to take the bundle
along (the project's device runner: ``carry: ["dist/bundle-gpu-node"]``, 64 MiB at most).

What goes in ``wheels/``: the project's runtime dependencies (``[project].dependencies`` in
pyproject.toml), what headless notebook execution needs (the ``notebooks`` extra minus the
interactive-only names in :data:`requirements.INTERACTIVE_ONLY`, plus
:data:`requirements.HEADLESS_NOTEBOOK`), the ``benchmark`` extra (airbench, the GPU report's peer part),
and their dependencies recursively, for the TARGET's Python version and platform, minus what the target
has. pip cannot resolve "for another platform, minus what the target has", so this package resolves
itself (:mod:`resolution`, :mod:`pip_fetch`): it downloads each needed requirement with ``pip download
--no-deps --only-binary=:all: --python-version .. --platform .. --implementation cp --abi cp3XX`` (with
older manylinux tags as fallbacks), reads the wheel's ``Requires-Dist``, evaluates the markers for the
target (its Python version, Linux, its machine, the requested extras) and recurses into names the target
lacks. A requirement published only as a source distribution (grad-cam 1.5.7, airbench 0.1.8) is built
here with ``pip wheel --no-deps --no-binary NAME``; that is allowed for pure-Python projects only (a
compiled one fails with a message saying so). Versions follow ``constraints.txt`` at the repo root when
it exists (``-c``), so the bundle gets the versions CI tests.

What the target has is an input (``--has NAME ...``, or a target's preset list). Neither those nor
their own dependencies are bundled: a node that has torch has torch's dependencies. ASSUMPTION: the
dependencies of the has-list are computed from the distributions installed in the Python running
this script (``importlib.metadata``; run it with the project's ``.venv``), a close stand-in for a
node with those packages. A has-list name not installed here counts as present with unknown
dependencies (it is said so). The versions on the node are unknown here: ``run.sh`` checks at start
that the node's packages satisfy the bundled wheels' requirements on them and warns otherwise, and
``--force NAME`` bundles a package even though the target has it (it then shadows the node's copy).

The bundle is built from scratch in a temporary folder beside the final one and moved into place
only when complete and within ``--max-mib``. Downloaded and built wheels are cached in
``.cache/bundle-wheels/<tag>/`` (ignored by git) and found there by the next build (``--offline``
uses the cache alone).

The package (``tools/bundle.py`` is its command), one job a module; each imports only modules listed
before it, so there are no import cycles::

    packaging_compat  packaging and tomllib, else pip's vendored copies (a bare Python has those)
    errors            BundleError, and the tail of pip's output its messages quote
    paths             the repository, the shared data, the wheel cache, the run.sh template
    targets           Target: Python version, platform tags, marker environment; the presets
    requirements      what the bundle must provide, markers, the has-list's closure, constraints
    wheels            a wheel's metadata, top-level modules and sha256
    resolution        resolve(): the wheels the target needs, level by level
    pip_fetch         PipFetcher: pip download / pip wheel for the target, pip's failures explained
    contents          the project's wheel, the data's facts, the GPU report, run.sh, the commit
    build             build_bundle(): everything above into one folder, MANIFEST.json, the size limit
    cli               the command line
    template/run.sh   the runner, copied verbatim into every bundle (shellchecked in tests/test_bundle.py)
"""
