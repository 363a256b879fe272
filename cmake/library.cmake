# The library as users install it (issue 11): libdurabletask, shared and static, made of the
# objects of the internal targets: the OBJECT library of every runtime module (dt_add_module in
# runtime/CMakeLists.txt lists them in the global property DT_MODULES), the worker's files
# (the static target durabletask's own), dt_broker (broker-adapter/), dt_base (base/) and
# dt_schema (schema/, the generated protobuf code). The internal static target durabletask stays
# what the tools, samples and tests link (they reach internal dt__ functions); these two are what
# `cmake --install` ships. Everything is compiled with hidden visibility (the targets' presets),
# so the shared library exports exactly the DT_API functions of the public headers
# (durabletask/defs.h; tests/install checks it with nm -D).
#
# Included from the top CMakeLists.txt after runtime/, broker-adapter/ and schema/.

get_property(DT_MODULES GLOBAL PROPERTY DT_MODULES)
set(DT_LIBRARY_OBJECTS $<TARGET_OBJECTS:durabletask>)
foreach(m ${DT_MODULES} dt_broker dt_base dt_schema)
  list(APPEND DT_LIBRARY_OBJECTS $<TARGET_OBJECTS:${m}>)
endforeach()
# runtime/worker's folders are OBJECT libraries of their own (dt_worker_part), not modules:
# $<TARGET_OBJECTS:durabletask> lists only the objects durabletask compiles itself.
get_property(dt_object_libraries GLOBAL PROPERTY DT_OBJECT_LIBRARIES)
foreach(t ${dt_object_libraries})
  list(APPEND DT_LIBRARY_OBJECTS $<TARGET_OBJECTS:${t}>)
endforeach()

# What a program linking the static library needs besides it (and threads): pkg-config modules
# and plain system libraries. The .pc file (Requires.private, Libs.private), the package config
# file (durabletask-config.cmake) and the static target are written from these lists, so a new
# external dependency of the internal targets is added here once (test_install's static links
# fail until it is).
set(DT_LIBRARY_PKG_DEPS libnats libprotobuf-c sqlite3 libcrypto libmicrohttpd jansson libcurl)
set(DT_LIBRARY_SYSTEM_LIBS m)
set(DT_LIBRARY_LIBS_PRIVATE)
foreach(l ${DT_LIBRARY_SYSTEM_LIBS})
  list(APPEND DT_LIBRARY_LIBS_PRIVATE -l${l})
endforeach()
list(APPEND DT_LIBRARY_LIBS_PRIVATE -pthread)

# SOVERSION: the ABI is kept within a major version, and while the major is 0 within a minor
# one (0.1 and 0.2 may differ), as docs/design.md says.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(DT_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(DT_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()

set(DT_PUBLIC_INCLUDES
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/runtime/include>
  $<BUILD_INTERFACE:${DT_GENERATED_INCLUDE_DIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

add_library(durabletask_shared SHARED ${DT_LIBRARY_OBJECTS})
set_target_properties(durabletask_shared PROPERTIES
  OUTPUT_NAME durabletask
  EXPORT_NAME durabletask
  VERSION ${PROJECT_VERSION}
  SOVERSION ${DT_SOVERSION}
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)
target_include_directories(durabletask_shared INTERFACE ${DT_PUBLIC_INCLUDES})
# The objects are already in the library; linking the internal target as well brings the
# modules' external dependencies along (nats.c, protobuf-c, SQLite, libcrypto, and whatever a module adds
# with target_link_libraries), while their archives add no object twice: every symbol they
# define is defined already.
target_link_libraries(durabletask_shared PRIVATE durabletask)
if(NOT DT_SANITIZE AND NOT DT_BUILD_FUZZ)
  # Every symbol resolved at link time: a missing dependency fails here, not in a user's build.
  target_link_options(durabletask_shared PRIVATE LINKER:--no-undefined)
endif()

add_library(durabletask_static STATIC ${DT_LIBRARY_OBJECTS})
set_target_properties(durabletask_static PROPERTIES
  OUTPUT_NAME durabletask
  EXPORT_NAME durabletask_static
  ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)
target_include_directories(durabletask_static INTERFACE ${DT_PUBLIC_INCLUDES})
pkg_check_modules(DT_LIBRARY_DEPS REQUIRED IMPORTED_TARGET ${DT_LIBRARY_PKG_DEPS})
target_link_libraries(durabletask_static INTERFACE
  $<BUILD_INTERFACE:PkgConfig::DT_LIBRARY_DEPS>
  $<INSTALL_INTERFACE:PkgConfig::durabletask_deps>
  ${DT_LIBRARY_SYSTEM_LIBS} Threads::Threads)

# For projects that add this tree with add_subdirectory: the names find_package gives.
add_library(durabletask::durabletask ALIAS durabletask_shared)
add_library(durabletask::durabletask_static ALIAS durabletask_static)
