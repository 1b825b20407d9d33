#!/usr/bin/env python3
"""The dispatch benchmark's Python reference: llmcompressor's Modifier.update_event over 100 modifiers.

Mirrors the seed's update_event (checks, on_event, start/end handling, on_update) with
no-op callbacks, stdlib only, and prints nanoseconds per modifier-event.
"""
import time


class Event:
    def __init__(self, type_, global_step):
        self.type_ = type_
        self.global_step = global_step
        self.steps_per_epoch = None

    @property
    def current_index(self):
        if self.steps_per_epoch is None:
            return self.global_step
        return self.global_step / float(self.steps_per_epoch)


class Modifier:
    def __init__(self, start):
        self.start, self.end = start, None
        self.initialized_, self.finalized_, self.started_, self.ended_ = True, False, True, False

    def should_start(self, event):
        if self.start is None:
            return False
        current = event.current_index
        return self.start <= current and (self.end is None or current < self.end)

    def should_end(self, event):
        return self.end is not None and event.current_index >= self.end

    def update_event(self, state, event):
        if not self.initialized_:
            raise RuntimeError("Cannot update an uninitialized modifier")
        if self.finalized_:
            raise RuntimeError("Cannot update a finalized modifier")
        self.on_event(state, event)
        if event.type_ == "batch_start" and not self.started_ and self.should_start(event):
            self.on_start(state, event)
            self.started_ = True
            self.on_update(state, event)
            return
        if event.type_ == "batch_end" and not self.ended_ and self.should_end(event):
            self.on_end(state, event)
            self.ended_ = True
            self.on_update(state, event)
            return
        if self.started_ and not self.ended_:
            self.on_update(state, event)

    def on_event(self, state, event):
        pass

    def on_start(self, state, event):
        pass

    def on_update(self, state, event):
        pass

    def on_end(self, state, event):
        pass


def main():
    modifiers = [Modifier(start=0) for _ in range(100)]
    event = Event("optim_post_step", 1)
    best = float("inf")
    rounds = 2000
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(rounds):
            for m in modifiers:
                m.update_event(None, event)
        best = min(best, time.perf_counter() - t0)
    print(f"python_dispatch ns_per_modifier_event={best / (rounds * len(modifiers)) * 1e9:.1f}")


if __name__ == "__main__":
    main()
