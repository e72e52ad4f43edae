# capstan_add_plugin(<name> SOURCES <files...> [LIBS <targets...>] [OUTPUT_NAME <file stem>]
#                    [OUTPUT_DIRECTORY <dir>] [NO_INSTALL])
#
# Builds a Capstan plugin: a MODULE library <OUTPUT_NAME or name>.so that exports
# capstan_plugin_entry and nothing else (hidden visibility plus a version script), with the
# capstan.plugin.v1 messages (lite runtime) generated and compiled into the plugin itself, and
# the header-only SDK (capstan::plugin_sdk) on its include path. The same function serves the
# plugins bundled with Capstan and plugins built out of tree against an installed SDK
# (find_package(Capstan)).
#
# The library lands in OUTPUT_DIRECTORY, else ${CAPSTAN_PLUGIN_OUTPUT_DIR} when set, else the
# current binary folder; `cmake --install` copies it to ${CAPSTAN_PLUGIN_INSTALL_DIR}
# (default: <libdir>/capstan/plugins) unless NO_INSTALL is given. A delegate loads every *.so in
# its plugin folders at start.
include_guard(GLOBAL)
include(GNUInstallDirs)

function(capstan_add_plugin name)
  cmake_parse_arguments(ARG "NO_INSTALL" "OUTPUT_NAME;OUTPUT_DIRECTORY" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "capstan_add_plugin(${name}): SOURCES is required")
  endif()
  if(NOT DEFINED CAPSTAN_PLUGIN_PROTO_DIR)
    message(FATAL_ERROR "capstan_add_plugin(${name}): CAPSTAN_PLUGIN_PROTO_DIR is not set "
                        "(use find_package(Capstan) first)")
  endif()
  if(NOT ARG_OUTPUT_NAME)
    set(ARG_OUTPUT_NAME ${name})
  endif()
  if(NOT ARG_OUTPUT_DIRECTORY)
    if(CAPSTAN_PLUGIN_OUTPUT_DIR)
      set(ARG_OUTPUT_DIRECTORY ${CAPSTAN_PLUGIN_OUTPUT_DIR})
    else()
      set(ARG_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    endif()
  endif()

  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    SUFFIX ".so"
    OUTPUT_NAME ${ARG_OUTPUT_NAME}
    LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY}
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  capstan_generate_proto(${name} IMPORT_DIR ${CAPSTAN_PLUGIN_PROTO_DIR}
                         PROTOS capstan/plugin/v1/plugin.proto)
  target_link_libraries(${name} PRIVATE capstan::plugin_sdk ${ARG_LIBS})
  # Only the entry point leaves the library, whatever visibility the code it links was built
  # with; every symbol it needs must resolve at link time rather than at dlopen().
  set(map ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/capstan_plugin.map)
  target_link_options(${name} PRIVATE "LINKER:--version-script=${map}" "LINKER:--no-undefined"
                      "LINKER:--exclude-libs,ALL")
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS ${map})
  if(COMMAND capstan_target_defaults)
    capstan_target_defaults(${name})
  endif()

  if(NOT ARG_NO_INSTALL)
    if(NOT CAPSTAN_PLUGIN_INSTALL_DIR)
      set(CAPSTAN_PLUGIN_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/capstan/plugins)
    endif()
    install(TARGETS ${name} LIBRARY DESTINATION ${CAPSTAN_PLUGIN_INSTALL_DIR} COMPONENT plugins)
  endif()
endfunction()
