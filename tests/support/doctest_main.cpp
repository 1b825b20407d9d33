// The shared doctest entry point of every test executable.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  // tests never read or write the user's registry cache, and never each
  // other's: a test about the cache names its own directory (FactoryOptions::cache_dir)
  ::setenv("MODKIT_NO_CACHE", "1", 1);
  doctest::Context context(argc, argv);
  return context.run();
}
