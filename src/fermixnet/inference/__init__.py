"""fermixnet.inference"""
