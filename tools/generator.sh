# Sourced by tools/dev.sh and tools/ci/*.sh: the CMake generator arguments for a build directory.
# Ninja for a new one (it keeps both cores busy where make idles between directories); an existing
# directory keeps the generator it was configured with (CMake refuses to switch).
generator_args() { [[ -f "$1/CMakeCache.txt" ]] || echo "-G Ninja"; }
