# Sourced by scripts/test and scripts/quickstart: both configure the same build folder the same
# way, so running one after the other rebuilds nothing.
#   CAPSTAN_BUILD_DIR   build folder (default: build/)
#   CAPSTAN_BUILD_TYPE  Quick (default: -O1, quickest to compile), Release, RelWithDebInfo, Debug
#   CAPSTAN_SANITIZE    ON to build with AddressSanitizer + UndefinedBehaviorSanitizer
#   CAPSTAN_CCACHE      OFF to compile without ccache even when it is installed (default: use it
#                       when present; scripts/setup does not install it)
capstan_configure() {
  local root=$1
  build_dir=${CAPSTAN_BUILD_DIR:-$root/build}
  local launcher=()
  if [ "${CAPSTAN_CCACHE:-ON}" != OFF ] && command -v ccache >/dev/null 2>&1; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  else
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER= -DCMAKE_CXX_COMPILER_LAUNCHER=)
  fi
  cmake -S "$root" -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE="${CAPSTAN_BUILD_TYPE:-Quick}" \
    -DCAPSTAN_WERROR=ON \
    -DCAPSTAN_SANITIZE="${CAPSTAN_SANITIZE:-OFF}" "${launcher[@]}" >/dev/null
}
