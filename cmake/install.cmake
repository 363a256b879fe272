# What `cmake --install` puts under the prefix: the public headers (with the generated
# version.h), libdurabletask shared and static, dtctl and dt-samples-worker, the CMake package
# (find_package(durabletask CONFIG): durabletask::durabletask, the shared library, and
# durabletask::durabletask_static) and durabletask.pc. Both package files are relocatable: they
# find the prefix from where they are installed. tests/install installs into a temp prefix and
# builds a program against it both ways.
#
# Included from the top CMakeLists.txt after cmake/library.cmake.
include(CMakePackageConfigHelpers)

# The static library's dependencies (cmake/library.cmake), as both package files spell them.
list(JOIN DT_LIBRARY_PKG_DEPS " " DT_PC_REQUIRES_PRIVATE)
list(JOIN DT_LIBRARY_LIBS_PRIVATE " " DT_PC_LIBS_PRIVATE)

install(DIRECTORY ${CMAKE_SOURCE_DIR}/runtime/include/durabletask
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(FILES ${DT_GENERATED_INCLUDE_DIR}/durabletask/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/durabletask)

install(TARGETS durabletask_shared durabletask_static EXPORT durabletask-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS dtctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET dt-samples-worker)
  install(TARGETS dt-samples-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(DT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/durabletask)
install(EXPORT durabletask-targets NAMESPACE durabletask:: DESTINATION ${DT_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/durabletask-config.cmake.in
  ${CMAKE_BINARY_DIR}/durabletask-config.cmake INSTALL_DESTINATION ${DT_CMAKE_DIR})
# Pre-1.0 a minor version may break the API, so only the same major.minor is compatible.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(DT_COMPAT SameMinorVersion)
else()
  set(DT_COMPAT SameMajorVersion)
endif()
write_basic_package_version_file(${CMAKE_BINARY_DIR}/durabletask-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY ${DT_COMPAT})
install(FILES ${CMAKE_BINARY_DIR}/durabletask-config.cmake
              ${CMAKE_BINARY_DIR}/durabletask-config-version.cmake
        DESTINATION ${DT_CMAKE_DIR})

# durabletask.pc: ${pcfiledir} makes it relocatable; the prefix is two levels up from
# <libdir>/pkgconfig for the usual lib or lib64, more for a multiarch libdir. Absolute install
# directories (-DCMAKE_INSTALL_LIBDIR=/...) are written as they are: not relocatable then.
set(DT_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(DT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(DT_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(DT_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH DT_PC_TO_PREFIX /prefix/${DT_PC_DIR} /prefix)
  string(REGEX REPLACE "/$" "" DT_PC_TO_PREFIX "${DT_PC_TO_PREFIX}")
  set(DT_PC_PREFIX "\${pcfiledir}/${DT_PC_TO_PREFIX}")
  set(DT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(DT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_SOURCE_DIR}/cmake/durabletask.pc.in ${CMAKE_BINARY_DIR}/durabletask.pc
               @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/durabletask.pc DESTINATION ${DT_PC_DIR})
