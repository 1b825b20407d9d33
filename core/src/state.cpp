// The C view of the session state.
#include <modkit/core/state.hpp>

namespace modkit {

modkit_state State::to_abi() const {
  modkit_state s{};
  s.struct_size = sizeof(modkit_state);
  s.reserved = 0;
  s.host = host;
  s.model = model;
  s.rank = rank;
  s.world_size = world_size;
  return s;
}

}  // namespace modkit
