"""Tests of jopt.schedules."""
