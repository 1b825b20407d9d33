// Must not compile: a modifier declaring a pipeline modkit.h does not define (it was exported as "datafree").
#include <modkit/sdk.hpp>

class OddPipelineModifier final : public modkit::sdk::Modifier {
 public:
  static constexpr uint32_t pipeline = 7;
  explicit OddPipelineModifier(const modkit::sdk::Params&) {}
};

MODKIT_EXPORT_MODIFIER(OddPipelineModifier, "1.0.0", "a pipeline no host knows")
