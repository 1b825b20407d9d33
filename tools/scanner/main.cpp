// modkit-plugin-scanner: loads plugin files in a throwaway process and reports their load records to the host.
#include <modkit/core/detail/scanner.hpp>

int main(int argc, char** argv) { return modkit::detail::plugin_scanner_main(argc, argv); }
