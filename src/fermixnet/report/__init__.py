"""fermixnet.report"""
