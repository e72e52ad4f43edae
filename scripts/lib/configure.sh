# Sourced by scripts/test and scripts/quickstart: both configure the same build folder the same
# way, so running one after the other rebuilds nothing.
#   CAPSTAN_BUILD_DIR   build folder (default: build/)
#   CAPSTAN_BUILD_TYPE  Quick (default: -O1, quickest to compile), Release, RelWithDebInfo, Debug
#   CAPSTAN_SANITIZE    ON to build with AddressSanitizer + UndefinedBehaviorSanitizer
capstan_configure() {
  local root=$1
  build_dir=${CAPSTAN_BUILD_DIR:-$root/build}
  cmake -S "$root" -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE="${CAPSTAN_BUILD_TYPE:-Quick}" \
    -DCAPSTAN_WERROR=ON \
    -DCAPSTAN_SANITIZE="${CAPSTAN_SANITIZE:-OFF}" >/dev/null
}
