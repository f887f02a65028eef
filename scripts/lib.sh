# Helpers shared by the scripts (sourced, not run).

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "Need root (or sudo) to run: $*" >&2; return 1; fi
}

APT_UPDATED=""
apt_install() {
  # apt_install PACKAGE... : install Debian packages that are missing.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$APT_UPDATED" ]; then as_root apt-get -o DPkg::Lock::Timeout=600 update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
}

ensure_venv() {
  # ensure_venv REQUIREMENTS_FILE : a .venv with the requirements installed (quietly).
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv && python3 -m venv .venv; }
  fi
  .venv/bin/pip install -q --disable-pip-version-check -r "$1" 2>&1 | grep -v "is ignored: it is neither" || true
}

wait_for_port() {
  # wait_for_port HOST PORT SECONDS : poll until something listens (bounded).
  local host=$1 port=$2 deadline=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if .venv/bin/python -c "import socket,sys; socket.create_connection(('$host', $port), 0.5)" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "Nothing listens on $host:$port after $3 s" >&2
  return 1
}
