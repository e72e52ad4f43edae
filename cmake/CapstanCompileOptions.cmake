# Compiler flags shared by every first-party target: warnings on, sanitizers one option away.
add_library(capstan_compile_options INTERFACE)
add_library(capstan::compile_options ALIAS capstan_compile_options)
target_compile_options(capstan_compile_options INTERFACE -Wall -Wextra -Wpedantic)
if(CAPSTAN_UNITY_BUILD)
  # A class of one source file with a member of a type from that file's anonymous namespace is
  # fine in a .cpp; inside a unity unit GCC sees the .cpp as an included header and warns.
  target_compile_options(capstan_compile_options INTERFACE
                         $<$<CXX_COMPILER_ID:GNU>:-Wno-subobject-linkage>)
endif()
if(CAPSTAN_WERROR)
  target_compile_options(capstan_compile_options INTERFACE -Werror)
endif()

if(CAPSTAN_SANITIZE)
  # Applied globally so that libraries, plugins and the processes integration tests start are
  # all instrumented alike; a plugin built without ASan loaded into an ASan host is fine, the
  # reverse is not.
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # GCC's -Wmaybe-uninitialized misfires on instrumented code (std::regex, std::function), so
  # a sanitizer build with -Werror would fail on the standard library's headers.
  target_compile_options(capstan_compile_options INTERFACE
                         $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
endif()

# capstan_target_defaults(target): the warnings above plus the project's include conventions.
function(capstan_target_defaults target)
  target_link_libraries(${target} PRIVATE capstan::compile_options)
endfunction()
