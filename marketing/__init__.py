"""The store's own content and campaigns: mall news, activities, store info, counter QR codes."""
