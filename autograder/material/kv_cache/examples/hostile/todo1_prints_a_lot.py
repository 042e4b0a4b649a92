# The reference's update, printing 64 KB on every call.
print("debug " * 10922)
# __REFERENCE_BODY__
