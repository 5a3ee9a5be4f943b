# Packaging.cmake - CPack settings: `cpack -G DEB` in the build directory
# makes ipchub_<version>_<arch>.deb with everything `cmake --install` puts
# in place. Configure with -DCMAKE_INSTALL_PREFIX=/usr for a Debian
# package: the package installs under the configured prefix, and the
# systemd units name the binaries by that path. Dependencies are computed
# by dpkg-shlibdeps from the binaries.
set(CPACK_PACKAGE_NAME "ipchub")
set(CPACK_PACKAGE_VENDOR "ipchub")
set(CPACK_PACKAGE_CONTACT "ipchub maintainers <ipchub@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "local inter-process message hub (broker, C library, CLI)")
set(CPACK_PACKAGE_DESCRIPTION
  "ipchub routes msgpack messages by name between local processes through a\n small broker on a Unix socket. This package has the broker ipchubd with\n its systemd units, the ipchub command-line client, and libipchub (shared\n and static, headers, pkg-config and CMake files).")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# ipchub.h includes msgpack.h, so building against the library needs it.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libmsgpack-dev")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_GENERATOR "DEB")
set(CPACK_SOURCE_GENERATOR "TGZ")
set(CPACK_SOURCE_IGNORE_FILES "/build.*/" "/\\\\.git/")
include(CPack)
