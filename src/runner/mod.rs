//! Wires spec, data, model, train and store: claims trials, runs them, records results.
