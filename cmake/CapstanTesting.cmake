# capstan_add_gtest(NAME <name> SOURCES <files...> [LIBS <targets...>] [LABELS <labels...>])
#
# One GoogleTest executable; each TEST becomes its own ctest entry (discovered when ctest runs,
# so building never executes test binaries). Executables that integration tests start are
# reachable through the CAPSTAN_BIN_DIR / CAPSTAN_PLUGIN_DIR / CAPSTAN_SOURCE_DIR definitions.
#
# Test sources are compiled at -O0 in the Quick build: their own code only starts processes and
# checks results, and -O0 takes about a fifth less CPU than Quick's -O1 (the libraries they test
# keep their flags). When no compiler launcher such as ccache is set (a clean build, as CI does),
# every test also reuses one precompiled header of GoogleTest, nlohmann::json and the test
# support header, parsed once instead of in each of the ~70 test sources. With ccache the header
# is left out: ccache does not cache compilations that use one unless configured for it.
include(GoogleTest)
set(CAPSTAN_TEST_PCH AUTO CACHE STRING
    "Precompiled header for the tests: ON, OFF or AUTO (ON when no compiler launcher is set)")
set_property(CACHE CAPSTAN_TEST_PCH PROPERTY STRINGS AUTO ON OFF)
if(CAPSTAN_TEST_PCH STREQUAL "AUTO")
  if(CMAKE_CXX_COMPILER_LAUNCHER)
    set(capstan_test_pch_on OFF)
  else()
    set(capstan_test_pch_on ON)
  endif()
else()
  set(capstan_test_pch_on ${CAPSTAN_TEST_PCH})
endif()
if(capstan_test_pch_on)
  set(capstan_test_pch_source ${CMAKE_BINARY_DIR}/tests/capstan_test_pch.cpp)
  file(CONFIGURE OUTPUT ${capstan_test_pch_source}
       CONTENT "// Builds the tests' precompiled header. An executable like the tests, so that\n\
// the header gets their code-model flags (-fPIE); a library's (-fPIC) would not match.\n\
int main() { return 0; }\n")
  add_executable(capstan_test_pch ${capstan_test_pch_source})
  set_target_properties(capstan_test_pch PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                    ${CMAKE_BINARY_DIR}/tests/pch)
  capstan_target_defaults(capstan_test_pch)
  target_compile_options(capstan_test_pch PRIVATE $<$<CONFIG:Quick>:-O0>)
  target_link_libraries(capstan_test_pch PRIVATE capstan::testing GTest::gtest GTest::gmock
                                                 nlohmann_json::nlohmann_json)
  target_precompile_headers(capstan_test_pch PRIVATE
    <algorithm> <atomic> <chrono> <filesystem> <map> <memory> <mutex> <set> <string> <thread>
    <vector> <gtest/gtest.h> <gmock/gmock.h> <nlohmann/json.hpp>
    [["capstan/testing/testing.h"]])
endif()

function(capstan_add_gtest)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  capstan_target_defaults(${ARG_NAME})
  target_compile_options(${ARG_NAME} PRIVATE $<$<CONFIG:Quick>:-O0>)
  if(TARGET capstan_test_pch)
    target_precompile_headers(${ARG_NAME} REUSE_FROM capstan_test_pch)
  endif()
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_LIBS} capstan::testing GTest::gtest GTest::gmock
                                            GTest::gtest_main)
  gtest_discover_tests(${ARG_NAME} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 30
                       PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()
