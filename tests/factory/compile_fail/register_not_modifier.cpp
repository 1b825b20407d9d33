// Must not compile: registering a class that does not derive from modkit::Modifier.
#include <modkit/core/factory.hpp>

struct NotAModifier {};

void register_it(modkit::ModifierFactory& factory) { factory.register_class<NotAModifier>("NotAModifier"); }
