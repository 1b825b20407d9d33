# modkit_add_plugin(<name> SOURCES <src>... [EXPERIMENTAL] [TORCH] [NO_INSTALL] [OUTPUT_DIRECTORY <dir>])
#
# Builds one modifier plugin as a MODULE library <name>.so against the modkit SDK:
# hidden visibility (only the exported *Modifier symbols are dynamic), no undefined
# symbols left for the host to resolve, output into the plugin directory (its
# experimental/ subdirectory with EXPERIMENTAL), installed to
# <libdir>/modkit/plugins. TORCH links LibTorch (find_package(Torch) first) and OpenMP,
# which at::parallel_for needs to use more than one thread.
# The same function serves built-in plugins and third-party projects.
include_guard(GLOBAL)

function(modkit_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "EXPERIMENTAL;TORCH;NO_INSTALL" "OUTPUT_DIRECTORY" "SOURCES")
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "modkit_add_plugin(${name}): SOURCES is required")
  endif()
  if(arg_OUTPUT_DIRECTORY)
    set(out_dir "${arg_OUTPUT_DIRECTORY}")
  elseif(DEFINED MODKIT_PLUGIN_OUTPUT_DIR)
    set(out_dir "${MODKIT_PLUGIN_OUTPUT_DIR}")
  else()
    set(out_dir "${CMAKE_BINARY_DIR}/plugins")
  endif()
  if(DEFINED MODKIT_PLUGIN_INSTALL_DIR)
    set(install_dir "${MODKIT_PLUGIN_INSTALL_DIR}")
  else()
    set(install_dir "${CMAKE_INSTALL_LIBDIR}/modkit/plugins")
  endif()
  if(arg_EXPERIMENTAL)
    string(APPEND out_dir "/experimental")
    string(APPEND install_dir "/experimental")
  endif()

  add_library(${name} MODULE ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE modkit::sdk)
  if(arg_TORCH)
    if(NOT TARGET torch)
      find_package(Torch REQUIRED)
    endif()
    # at::parallel_for is an inline OpenMP loop: compiled without OpenMP it runs on one thread
    find_package(OpenMP REQUIRED)
    target_link_libraries(${name} PRIVATE torch OpenMP::OpenMP_CXX)
  endif()
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY "${out_dir}")
  target_compile_features(${name} PRIVATE cxx_std_17)
  # export the *Modifier entry points only: hidden visibility does not cover
  # template instantiations from headers that force default visibility
  set(version_script "${CMAKE_CURRENT_BINARY_DIR}/${name}.modkit.map")
  file(WRITE "${version_script}" "{\n  global: *Modifier;\n  local: *;\n};\n")
  target_link_options(${name} PRIVATE "LINKER:--no-undefined" "LINKER:--version-script=${version_script}")
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${version_script}")
  if(NOT arg_NO_INSTALL)
    install(TARGETS ${name} LIBRARY DESTINATION "${install_dir}" COMPONENT plugins)
  endif()
endfunction()
