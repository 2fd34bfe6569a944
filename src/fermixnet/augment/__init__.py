"""fermixnet.augment"""
