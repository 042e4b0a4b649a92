"""kvkit: build, grade and package the KV-cache exercise."""
