# Sourced by bin/dev and bin/test: makes .venv with the project installed (editable, with [dev]).
# Needs only Python 3.11+; reinstalls whenever pyproject.toml changed since the last install.
find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
        if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.x)" >&2
    return 1
}

ensure_venv() {
    if ! .venv/bin/python -c 'import pip' >/dev/null 2>&1; then
        local python
        python="$(find_python)"
        echo "==> creating .venv with $("$python" --version)" >&2
        rm -rf .venv
        "$python" -m venv .venv
    fi
    # Reinstall whenever pyproject.toml differs from the one last installed from.
    local stamp=.venv/.pyproject.sha256 wanted
    wanted="$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' pyproject.toml)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
        echo "==> installing the project and its test tools into .venv (pip install -e '.[dev]')" >&2
        .venv/bin/python -m pip install -qq --disable-pip-version-check -e '.[dev]'
        echo "$wanted" > "$stamp"
    fi
}

