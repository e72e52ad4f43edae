# capstan_generate_proto(<target> IMPORT_DIR <dir> PROTOS <dir-relative .proto paths...>)
#
# Runs protoc for C++ and adds the generated sources to <target>, laid out as the protos are
# under IMPORT_DIR (so "capstan/plugin/v1/plugin.proto" gives "capstan/plugin/v1/plugin.pb.h"),
# with the output directory on <target>'s public include path. Shipped in the SDK package too,
# so out-of-tree plugins generate the boundary messages the same way.
function(capstan_generate_proto target)
  cmake_parse_arguments(ARG "" "IMPORT_DIR" "PROTOS" ${ARGN})
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/${target}_gen)
  file(MAKE_DIRECTORY ${out_dir})
  foreach(rel IN LISTS ARG_PROTOS)
    string(REGEX REPLACE "\\.proto$" "" stem ${rel})
    set(src ${out_dir}/${stem}.pb.cc)
    set(hdr ${out_dir}/${stem}.pb.h)
    add_custom_command(
      OUTPUT ${src} ${hdr}
      COMMAND protobuf::protoc --cpp_out=${out_dir} -I ${ARG_IMPORT_DIR} ${ARG_IMPORT_DIR}/${rel}
      DEPENDS ${ARG_IMPORT_DIR}/${rel} protobuf::protoc
      COMMENT "protoc ${rel}"
      VERBATIM)
    target_sources(${target} PRIVATE ${src} ${hdr})
  endforeach()
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${out_dir}>)
endfunction()
