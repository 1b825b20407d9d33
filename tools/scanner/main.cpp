// modkit-plugin-scanner: loads plugin files in a throwaway process and reports their load records to the host.
#include <modkit/core/plugin_scanner.hpp>

int main(int argc, char** argv) { return modkit::plugin_scanner_main(argc, argv); }
