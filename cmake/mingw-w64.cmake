# CMake toolchain file: cross-compile for 64-bit Windows with Debian's
# mingw-w64 (gcc-mingw-w64-x86-64). Used by scripts/mingw-deps for the
# dependencies and by the Windows build of ipchub itself:
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
#         -DIPCHUB_WIN_DEPS=<prefix printed by scripts/mingw-deps>
# With IPCHUB_WIN_DEPS set, pkg-config and find_* look only in that prefix
# (and the mingw sysroot), never in the build machine's /usr.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(IPCHUB_MINGW_HOST x86_64-w64-mingw32)

set(CMAKE_C_COMPILER ${IPCHUB_MINGW_HOST}-gcc)
set(CMAKE_CXX_COMPILER ${IPCHUB_MINGW_HOST}-g++)
set(CMAKE_RC_COMPILER ${IPCHUB_MINGW_HOST}-windres)
set(CMAKE_AR ${IPCHUB_MINGW_HOST}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${IPCHUB_MINGW_HOST}-ranlib CACHE FILEPATH "")

set(CMAKE_FIND_ROOT_PATH /usr/${IPCHUB_MINGW_HOST})
if(IPCHUB_WIN_DEPS)
  list(APPEND CMAKE_FIND_ROOT_PATH ${IPCHUB_WIN_DEPS})
  set(ENV{PKG_CONFIG_LIBDIR} ${IPCHUB_WIN_DEPS}/lib/pkgconfig)
  set(ENV{PKG_CONFIG_PATH} "")
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Try-compile checks must see IPCHUB_WIN_DEPS too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES IPCHUB_WIN_DEPS)

# Static libgcc so the .exe files run without the mingw runtime DLLs
# next to them (Wine and a plain Windows box have neither).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -static-libgcc")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")
