# Installation of the SDK as a package (included by the top-level CMakeLists.txt once everything is declared).
#
# `cmake --install <build> [--prefix P]` installs, besides what the targets install themselves (the ferry
# binary, libferry, MODULE plugins in lib/ferry/plugins, the SDK headers):
#   <libdir>/pkgconfig/ferry-sdk.pc            pkg-config: Cflags/Libs for plugins, variable plugindir
#   <libdir>/cmake/Ferry/FerryConfig.cmake     find_package(Ferry): Ferry::sdk and ferry_add_plugin()
#   <libdir>/cmake/Ferry/FerryConfigVersion.cmake
#   <libdir>/cmake/Ferry/FerryTargets.cmake    exported targets Ferry::ferry (libferry) and Ferry::headers
#   share/man/man1/ferry.1                     the man page (docs/man/ferry.1)
#   share/bash-completion/completions/ferry    bash completion (docs/completion/ferry.bash)
# All of them locate the prefix relative to their own place, so an installed tree may be moved.
include(CMakePackageConfigHelpers)

set(FERRY_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Ferry)
set(FERRY_PKGCONFIG_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Exported targets: Ferry::ferry = libferry (it links Ferry::headers = the SDK include directory and its
# jansson/libuv dependencies, recreated by FerryConfig.cmake from pkg-config; libferry's own libcurl, libpq, libmariadb,
# SQLite, libcrypto and libltdl stay private to it).
set_target_properties(ferry_sdk_headers PROPERTIES EXPORT_NAME headers)
install(TARGETS ferry_sdk_headers EXPORT FerryTargets)
install(EXPORT FerryTargets NAMESPACE Ferry:: DESTINATION ${FERRY_CMAKE_INSTALL_DIR})

# The plugin ABI of these headers, for the package files.
file(STRINGS ${PROJECT_SOURCE_DIR}/sdk/include/ferry/plugin.h _ferry_abi
     REGEX "^#define FERRY_ABI_M(AJ|IN)OR ")
string(REGEX REPLACE ".*FERRY_ABI_MAJOR ([0-9]+).*" "\\1" FERRY_ABI_MAJOR_PC "${_ferry_abi}")
string(REGEX REPLACE ".*FERRY_ABI_MINOR ([0-9]+).*" "\\1" FERRY_ABI_MINOR_PC "${_ferry_abi}")

# FerryConfig.cmake + version file.
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/FerryConfig.cmake.in
  ${PROJECT_BINARY_DIR}/FerryConfig.cmake
  INSTALL_DESTINATION ${FERRY_CMAKE_INSTALL_DIR}
  PATH_VARS FERRY_INSTALL_PLUGIN_DIR CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/FerryConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/FerryConfig.cmake ${PROJECT_BINARY_DIR}/FerryConfigVersion.cmake
        DESTINATION ${FERRY_CMAKE_INSTALL_DIR})

# ferry-sdk.pc, relocatable: the prefix is found from the .pc file's own directory (${pcfiledir}).
if(IS_ABSOLUTE "${FERRY_PKGCONFIG_INSTALL_DIR}")
  set(FERRY_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _ferry_pc_up "/ferry-prefix/${FERRY_PKGCONFIG_INSTALL_DIR}" "/ferry-prefix")
  string(REGEX REPLACE "/$" "" _ferry_pc_up "${_ferry_pc_up}")
  set(FERRY_PC_PREFIX "\${pcfiledir}/${_ferry_pc_up}")
endif()
foreach(_v LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_v}}")
    set(FERRY_PC_${_v} "${CMAKE_INSTALL_${_v}}")
  else()
    set(FERRY_PC_${_v} "\${prefix}/${CMAKE_INSTALL_${_v}}")
  endif()
endforeach()
if(IS_ABSOLUTE "${FERRY_INSTALL_PLUGIN_DIR}")
  set(FERRY_PC_PLUGINDIR "${FERRY_INSTALL_PLUGIN_DIR}")
else()
  set(FERRY_PC_PLUGINDIR "\${prefix}/${FERRY_INSTALL_PLUGIN_DIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/ferry-sdk.pc.in ${PROJECT_BINARY_DIR}/ferry-sdk.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ferry-sdk.pc DESTINATION ${FERRY_PKGCONFIG_INSTALL_DIR})

# The man page ferry(1) and the bash completion (docs/man, docs/completion).
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/ferry.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/docs/completion/ferry.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME ferry)
