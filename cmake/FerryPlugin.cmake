# ferry_plugin(<name> SOURCES <files...> [LIBS <targets...>] [DEFAULT STATIC|MODULE|OFF] [NO_INSTALL])
#
# Declares an in-tree plugin. Its build mode comes from the cache variable FERRY_PLUGIN_<NAME> (name upper
# case, '-' as '_'): STATIC links it into libferry and lists it in the generated built-in table, MODULE
# builds ferry_<name>.so for the loader to open at run time, OFF skips it. The default is
# FERRY_PLUGINS_DEFAULT (or DEFAULT when given).
# The plugin's target is ferry_plugin_<id> (id = name with '-' as '_'); its descriptor symbol must be
# ferry_plugin_<id>, defined with FERRY_PLUGIN_DEFINE(<id>, ...).
set_property(GLOBAL PROPERTY FERRY_STATIC_PLUGINS "")

function(ferry_plugin name)
  cmake_parse_arguments(P "NO_INSTALL" "DEFAULT" "SOURCES;LIBS" ${ARGN})
  string(REPLACE "-" "_" id "${name}")
  string(TOUPPER "${id}" ID)
  set(default "${FERRY_PLUGINS_DEFAULT}")
  if(P_DEFAULT)
    set(default "${P_DEFAULT}")
  endif()
  set(FERRY_PLUGIN_${ID} "${default}" CACHE STRING "Build mode of plugin ${name}: STATIC, MODULE or OFF")
  set_property(CACHE FERRY_PLUGIN_${ID} PROPERTY STRINGS STATIC MODULE OFF)
  set(mode "${FERRY_PLUGIN_${ID}}")
  set(target ferry_plugin_${id})
  if(mode STREQUAL "OFF")
    return()
  elseif(mode STREQUAL "STATIC")
    add_library(${target} STATIC ${P_SOURCES})
    target_link_libraries(${target} PRIVATE ferry_sdk ${P_LIBS})
    set_property(GLOBAL APPEND PROPERTY FERRY_STATIC_PLUGINS "${id}")
  elseif(mode STREQUAL "MODULE")
    add_library(${target} MODULE ${P_SOURCES})
    target_link_libraries(${target} PRIVATE ferry_sdk ferry ${P_LIBS})
    set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME "ferry_${id}"
                          LIBRARY_OUTPUT_DIRECTORY ${FERRY_BUILD_PLUGIN_DIR})
    if(NOT P_NO_INSTALL)
      install(TARGETS ${target} LIBRARY DESTINATION ${FERRY_INSTALL_PLUGIN_DIR})
    endif()
  else()
    message(FATAL_ERROR "FERRY_PLUGIN_${ID} must be STATIC, MODULE or OFF (is '${mode}')")
  endif()
  set_property(GLOBAL APPEND PROPERTY FERRY_ALL_PLUGINS "${id}:${mode}")
endfunction()

# Generates core's built-in table from the STATIC plugins and links them into libferry.
function(ferry_finish_builtin_table)
  get_property(ids GLOBAL PROPERTY FERRY_STATIC_PLUGINS)
  set(FERRY_BUILTIN_EXTERNS "")
  set(FERRY_BUILTIN_ENTRIES "")
  foreach(id IN LISTS ids)
    string(APPEND FERRY_BUILTIN_EXTERNS "extern const ferry_plugin ferry_plugin_${id};\n")
    string(APPEND FERRY_BUILTIN_ENTRIES "  &ferry_plugin_${id},\n")
    target_link_libraries(ferry PRIVATE ferry_plugin_${id})
  endforeach()
  configure_file(${PROJECT_SOURCE_DIR}/core/builtin_plugins.c.in ${PROJECT_BINARY_DIR}/core/builtin_plugins.c @ONLY)
  target_sources(ferry PRIVATE ${PROJECT_BINARY_DIR}/core/builtin_plugins.c)
endfunction()
