"""Example of a pass package that extends Ember without touching it."""
