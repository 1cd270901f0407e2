# Packaging.cmake - what `cmake --install` puts where, and the .deb that
# `cpack -G DEB` (or `cmake --build build --target package`) makes of it:
# the two programs, their man pages, the plugin header and its pkg-config
# file, the systemd units (ExecStart pointing at the installed programs)
# and the documentation. Nothing else is installed: no tests, no benchmark.
include(GNUInstallDirs)

install(TARGETS mapq mapq-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES common/include/mapq/plugin.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mapq)
configure_file(cmake/mapq-plugin.pc.in mapq-plugin.pc @ONLY)
# A header-only API: its pkg-config file is the same on every architecture.
install(FILES ${PROJECT_BINARY_DIR}/mapq-plugin.pc
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pkgconfig)
install(FILES docs/man/mapq.1 docs/man/mapq-agent.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# The units of deploy/ name /usr/local/bin (where people copy the
# programs); installed ones name where these are installed, the prefix
# being known only when installing (cmake --install --prefix, cpack).
set(MAPQ_UNITDIR lib/systemd/system CACHE STRING
    "where systemd units are installed, under the prefix")
install(CODE "
    foreach(unit mapq-agent.service mapq-scheduler.service)
        file(READ \"${PROJECT_SOURCE_DIR}/deploy/\${unit}\" text)
        string(REPLACE \"/usr/local/bin/\"
               \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/\" text
               \"\${text}\")
        set(dest \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${MAPQ_UNITDIR}\")
        message(STATUS \"Installing: \${dest}/\${unit}\")
        file(WRITE \"\${dest}/\${unit}\" \"\${text}\")
    endforeach()
")
install(FILES README.md LICENSE docs/OPERATIONS.md docs/PROTOCOL.md
              docs/JSON.md deploy/redis.conf
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        PATTERN "CMakeLists.txt" EXCLUDE)

set(CPACK_PACKAGE_NAME mapq)
set(CPACK_PACKAGE_VENDOR "the mapq authors")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "distributed executor for map tasks, on Redis")
set(CPACK_PACKAGE_DESCRIPTION
    "mapq runs the map nodes of YAML workflows (a task applied to every \
element of a list) on agents on many hosts, through Redis queues, with \
retries, timeouts, interruption handling and a result cache.\n\
 This package holds mapq (the command line and scheduler), mapq-agent, \
their systemd units and the plugin API.")
set(CPACK_PACKAGE_CONTACT "the mapq authors <mapq@localhost>")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# mapq run without --redis starts a private redis-server.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server (>= 5:7.0)")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "pkg-config")
set(CPACK_STRIP_FILES ON)
include(CPack)
