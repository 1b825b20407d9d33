# Installs the CMake package: find_package(modkit) gives modkit::sdk, modkit::core, modkit::torch and modkit_add_plugin().
include(CMakePackageConfigHelpers)
set(MODKIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/modkit)
install(EXPORT modkitTargets NAMESPACE modkit:: DESTINATION ${MODKIT_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/modkitConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/modkitConfig.cmake
  INSTALL_DESTINATION ${MODKIT_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/modkitConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/modkitConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/modkitConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/ModkitPlugin.cmake
  DESTINATION ${MODKIT_CMAKE_DIR})
